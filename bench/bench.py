#!/usr/bin/env python3
"""The benchmark of alert-exec (scripts/bench.sh runs it).

Runs the release engine against the alerts emulator in eight workloads,
prints one table and writes it, with the machine and the date, to a
Markdown file:

 1. ceilings: wrk, a bare libcurl client (bench/curl_ceiling.c) and a bare
    SQLite loop over the engine's statements (bench/sqlite_ceiling.c);
 2. throughput: N alerts at intervalSecs 1, N raised until the engine
    falls behind;
 3. schedule accuracy: 1 000 alerts at 1 s and 10 000 at 10 s, gaps
    between queries of each target as the emulator logged them;
 4. detection to delivery: first query serving a firing value -> notify
    recorded by the emulator;
 5. storm: 5 000 alerts go CRITICAL in the same second;
 6. scale: 100 000 alerts at 60 s: peak RSS, restart time, database size;
 7. listener: the same alerts with the HTTP listener off and on (the
    status page and /metrics scraped every second), side by side:
    evaluations per second and CPU per evaluation.
 8. postgres (when the PostgreSQL server binaries are installed: a scratch
    server of its own, tests/pg/pg-scratch.sh; else reported as skipped):
    one engine's highest sustained evaluations per second on PostgreSQL
    and on SQLite, found as in 2, in the same workload, and CPU per
    evaluation at an equal load (the engine's, and the server's);
    evaluations per second with 1, 2 and 3 engines on one database at a
    load above what one sustains; takeovers after kill -9 among three
    engines (--lease 3s, 12 kills: p50 and max) while the alerts' values
    step through CRITICAL, WARN and PASS, and the calls owed against those
    delivered (lost, duplicates).

--smoke runs every workload at a tiny size in a few seconds: it checks
that the benchmark works, not how fast the engine is."""

import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import analysis  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
CONNECTIONS = 4        # the engine's default -c: its evaluation connections
FIRING = 250.0         # above every benchmark alert's critical threshold
QUIET = 50.0           # below warn

FULL = {
    "ceiling_secs": 5, "sqlite_secs": 3, "ceiling_alerts": 10000,
    "tp_steps": [5000, 10000, 15000, 20000, 25000, 30000, 40000, 50000],
    "tp_ceiling_secs": 3, "tp_warm_secs": 3, "tp_window_secs": 8,
    "sched": [(1000, 1, 6, 30), (10000, 10, 12, 60)],   # (alerts, interval, warm, window)
    "d2d_first": 9, "d2d_spread": 20, "d2d_hold": 4,
    "storm_alerts": 5000, "storm_at": 8, "storm_wait": 30,
    "scale_alerts": 100000, "scale_interval": 60, "scale_secs": 120, "restart_secs": 10,
    "busy_secs": 0.5,
    "listener_alerts": 10000, "listener_rounds": 2, "listener_window_secs": 10,
    "pg_steps": [5000, 10000, 15000, 20000, 30000],
    "pg_sqlite_steps": [10000, 20000, 30000, 40000, 50000], "pg_engines": [1, 2, 3],
    "pg_kill_alerts": 300, "pg_kills": 12, "pg_kill_every": 5, "pg_phase": 8, "pg_drain_secs": 30,
}
SMOKE = {
    "ceiling_secs": 1, "sqlite_secs": 0.3, "ceiling_alerts": 100,
    "tp_steps": [100],
    "tp_ceiling_secs": 0.5, "tp_warm_secs": 0.3, "tp_window_secs": 1,
    "sched": [(100, 1, 1.2, 2), (100, 2, 0.5, 4.2)],
    "d2d_first": 1.5, "d2d_spread": 0.8, "d2d_hold": 1.5,
    "storm_alerts": 200, "storm_at": 1.5, "storm_wait": 10,
    "scale_alerts": 1000, "scale_interval": 2, "scale_secs": 4, "restart_secs": 1,
    "busy_secs": 0.2,
    "listener_alerts": 100, "listener_rounds": 1, "listener_window_secs": 1.5,
    "pg_steps": [100], "pg_sqlite_steps": [], "pg_engines": [2],
    "pg_kill_alerts": 30, "pg_kills": 2, "pg_kill_every": 3, "pg_phase": 8, "pg_drain_secs": 10,
}
PG_SCRATCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "pg",
                          "pg-scratch.sh")
PG_LEASE_S = 3


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def alert(name, query, interval):
    return {"name": name, "query": query, "intervalSecs": interval, "repeatIntervalSecs": 3600,
            "sustainSecs": 0, "warn": {"value": 100, "message": "warning"},
            "critical": {"value": 200, "message": "critical"}}


def write_alerts(path, n, interval, prefix="a"):
    """n alerts <prefix>-i querying q-i at interval seconds; returns names->targets."""
    alerts = [alert("%s-%d" % (prefix, i), "q-%d" % i, interval) for i in range(1, n + 1)]
    with open(path, "w") as f:
        json.dump(alerts, f)
    return {a["name"]: a["query"] for a in alerts}


class Emulator:
    def __init__(self, ctx, name, alerts_file, timeline=None, query_log=False, record=False,
                 threads=None, request_log=False):
        self.ctx = ctx
        self.request_log = ctx.file(name + "-requests.jsonl") if request_log else None
        self.query_log = ctx.file(name + "-queries.jsonl") if query_log else None
        self.record = ctx.file(name + "-record.jsonl") if record else None
        cmd = [ctx.emulator, "--port", "0", "--alerts", alerts_file]
        if timeline is not None:
            cmd += ["--timeline", timeline]
        if self.query_log:
            cmd += ["--query-log", self.query_log]
        if self.record:
            cmd += ["--record", self.record]
        if threads:
            cmd += ["--threads", str(threads)]
        if self.request_log:
            cmd += ["--request-log", self.request_log]
        self.stderr = open(ctx.file(name + "-emulator.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        ctx.children.append(self.proc)
        line = self.proc.stdout.readline()
        # The emulator's timelines count from just before this line.
        self.started_ms = time.time() * 1000.0
        if not line.startswith("listening on "):
            raise RuntimeError("emulator did not start: %r (see %s)" % (line, self.stderr.name))
        self.url = "http://" + line.strip().split(" ")[-1]

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=5) as r:
            return json.loads(r.read())

    def queries(self):
        return sum(self.stats().get("query", {}).values())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


class Engine:
    def __init__(self, ctx, name, server, db, level="warn", args=()):
        self.log_path = ctx.file(name + "-engine.log")
        self.stderr = open(self.log_path, "w")
        # The listener is off: the benchmark measures evaluations, and
        # engines run side by side (the default port would clash).
        cmd = [ctx.engine, "--server", server, "--db", db, "-l", level, "--listen", "off"] + list(args)
        self.spawned_ms = time.time() * 1000.0
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.stderr)
        ctx.children.append(self.proc)

    def cpu(self):
        """User + system CPU seconds of the process so far."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def peak_rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        return self.proc.returncode

    def db_errors(self):
        """Database errors the engine logged (busy, locked, failed writes)."""
        n = 0
        with open(self.log_path) as f:
            for line in f:
                if (" ERROR " in line or " CRITICAL " in line) and (
                        "database" in line or "busy" in line or "locked" in line):
                    n += 1
        return n

    def summary(self):
        """key=value fields of the engine's "stopped" line (needs -l info)."""
        with open(self.log_path) as f:
            for line in f:
                if " stopped " in line:
                    return dict(re.findall(r"(\w+)=(\S+)", line))
        return {}


class Context:
    def __init__(self, args):
        self.args = args
        self.p = SMOKE if args.smoke else FULL
        self.engine = os.path.join(args.build_dir, "alert-exec")
        self.emulator = os.path.join(args.build_dir, "alerts-emulator")
        self.curl_ceiling = os.path.join(args.build_dir, "bench", "curl_ceiling")
        self.sqlite_ceiling = os.path.join(args.build_dir, "bench", "sqlite_ceiling")
        self.dir = tempfile.mkdtemp(prefix="alert-exec-bench.")
        self.children = []

    def file(self, name):
        return os.path.join(self.dir, name)

    def cleanup(self):
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def busy_share(secs=0.5):
    """Share of all CPUs busy over secs (from /proc/stat): when the
    benchmark runs nothing, that is other work on the machine."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v) - idle, sum(v)
    b0, t0 = sample()
    time.sleep(secs)
    b1, t1 = sample()
    return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def wait_until(pred, timeout, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def run_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bare_curl(ctx, url, count, secs, mode="multi"):
    return run_json([ctx.curl_ceiling, "--url", url, "--prefix", "q-", "--count", str(count),
                     "--connections", str(CONNECTIONS), "--seconds", str(secs), "--mode", mode])


# ---- 1. ceilings -----------------------------------------------------------

def ceilings(ctx):
    p = ctx.p
    n = p["ceiling_alerts"]
    write_alerts(ctx.file("ceiling-alerts.json"), n, 1)
    emu = Emulator(ctx, "ceiling", ctx.file("ceiling-alerts.json"))
    res = {}
    try:
        if shutil.which("wrk"):
            out = subprocess.run(["wrk", "-t2", "-c%d" % CONNECTIONS, "-d%ds" % max(1, p["ceiling_secs"]),
                                  emu.url + "/query?target=q-1"],
                                 capture_output=True, text=True, check=True).stdout
            m = re.search(r"Requests/sec:\s+([\d.]+)", out)
            res["wrk_rps"] = float(m.group(1)) if m else None
        else:
            res["wrk_rps"] = None
        res["curl_multi"] = bare_curl(ctx, emu.url, n, p["ceiling_secs"], "multi")
        res["curl_easy"] = bare_curl(ctx, emu.url, n, p["ceiling_secs"], "easy")
    finally:
        emu.stop()
    for batch in (64, 1):
        res["sqlite_%d" % batch] = run_json([ctx.sqlite_ceiling, "--db", ctx.file("sqlite.db"),
                                             "--alerts", str(n), "--batch", str(batch),
                                             "--seconds", str(p["sqlite_secs"])])
    log("ceilings: wrk %s rps, curl multi %.0f rps, easy %.0f rps, sqlite %.0f evals/s"
        % (res["wrk_rps"], res["curl_multi"]["rps"], res["curl_easy"]["rps"],
           res["sqlite_64"]["evals_per_s"]))
    return res


# ---- 2. throughput ---------------------------------------------------------

def throughput_step(ctx, n, db=None, label="tp", engines=1, ceiling=True, pg=None):
    """Evaluations per second and CPU per evaluation of `engines` engines
    with n alerts at 1 s, on a SQLite file of its own or on db (with pg,
    the PgServer db lies on: its processes' CPU is counted too, and with
    several engines how the shards lie among them). ceiling=False skips
    ceiling (b)."""
    p = ctx.p
    alerts = ctx.file("%s-%d-alerts.json" % (label, n))
    targets = write_alerts(alerts, n, 1)
    # Values below warn: this measures evaluations; calls are workloads 4
    # and 5 (the emulator's default cycle would start most alerts firing
    # and measure a notify storm instead).
    timeline = ctx.file("%s-%d-timeline.json" % (label, n))
    with open(timeline, "w") as f:
        json.dump({q: [[0, QUIET]] for q in targets.values()}, f)
    emu = Emulator(ctx, "%s-%d" % (label, n), alerts, timeline=timeline)
    engs = []
    try:
        # Ceiling (b) again, on this emulator, just before the engine runs:
        # the ratio compares numbers taken a few seconds apart.
        ceil = bare_curl(ctx, emu.url, n, p["tp_ceiling_secs"]) if ceiling else None
        db = db or ctx.file("%s-%d.db" % (label, n))
        base = emu.queries()

        def start(i):
            args = []
            if engines > 1:
                args = ["--engine-id", "e%d" % i, "--lease", "%ds" % PG_LEASE_S]
            engs.append(Engine(ctx, "%s-%d-e%d" % (label, n, i), emu.url, db, level="info",
                               args=args))

        start(1)
        if engines > 1:
            # The others join once the first has created the schema and
            # synced the definitions (it queries), and the engines share
            # the shards out before the window.
            wait_until(lambda: emu.queries() > base, 60)
            for i in range(2, engines + 1):
                start(i)
            wait_until(lambda: len(pg.shards(db)) == engines
                       and min(pg.shards(db).values()) >= 0.9 * pg.SHARDS / engines, 30, step=0.5)
        wait_until(lambda: emu.queries() - base >= n, 60)
        time.sleep(p["tp_warm_secs"])

        def cpu():
            return sum(e.cpu() for e in engs)

        sc0 = pg.cpu() if pg else None
        q0, c0, t0 = emu.queries(), cpu(), time.time()
        time.sleep(p["tp_window_secs"])
        q1, c1, t1 = emu.queries(), cpu(), time.time()
        sc1 = pg.cpu() if pg else None
        shards = pg.shards(db) if pg and engines > 1 else None
        for e in engs:
            e.stop()
        rate = (q1 - q0) / (t1 - t0)
        evals = q1 - q0
        # The stop line counts commits that wrote rows, and the rows: of the
        # evaluation writes and of the deliveries (one commit per call, by
        # design). Older engines report one total.
        ec = er = cc = cr = 0
        for e in engs:
            s = e.summary()
            ec += int(s.get("eval_commits", s.get("commits", 0)))
            er += int(s.get("eval_rows", s.get("rows", 0)))
            cc += int(s.get("call_commits", 0))
            cr += int(s.get("call_rows", 0))
        step = {
            "alerts": n, "engines": engines, "evals_per_s": rate, "sustained": rate >= 0.97 * n,
            "cpu_s_per_1000": (c1 - c0) / evals * 1000 if evals else None,
            "cpu_cores": (c1 - c0) / (t1 - t0),
            "rows_per_commit": er / ec if ec else None,
            "rows_per_commit_all": (er + cr) / (ec + cc) if ec + cc else None,
            "db_errors": sum(e.db_errors() for e in engs),
            "ceiling": ceil,
        }
        if pg:
            step["server_cpu_cores"] = (sc1 - sc0) / (t1 - t0)
            step["server_cpu_s_per_1000"] = (sc1 - sc0) / evals * 1000 if evals else None
        if shards is not None:
            step["shards"] = sorted(shards.values(), reverse=True)
        log("throughput %d alerts%s%s: %.0f evals/s (%s), %.3f CPU s/1000%s%s, rows/commit %s%s" % (
            n, ", %d engines" % engines if engines > 1 else "", " (%s)" % label,
            rate, "sustained" if step["sustained"] else "behind", step["cpu_s_per_1000"] or 0,
            ", server %.3f CPU s/1000" % (step["server_cpu_s_per_1000"] or 0) if pg else "",
            ", ceiling %.0f rps" % ceil["rps"] if ceil else "", fmt(step["rows_per_commit"]),
            ", shards %s" % step["shards"] if shards is not None else ""))
        return step
    finally:
        for e in engs:
            e.stop()
        emu.stop()


def step_up(ctx, loads, measure):
    """Raises the load through loads until measure(n) falls behind (a step
    that fails is run once more: the machine may be shared), then tries
    halfway between the last step sustained and the first one not.
    Returns the steps run, the best sustained (or, when none was, the
    fastest), the full load (the largest step run, where the engine works
    flat out) and the first load not sustained."""
    steps = []
    passed, failed = None, None

    def run(n):
        s = measure(n)
        steps.append(s)
        if not s["sustained"] and not ctx.args.smoke:
            s = measure(n)
            steps.append(s)
        return s

    for n in loads:
        s = run(n)
        if s["sustained"]:
            passed = s
        else:
            failed = s
            break
    if passed and failed and not ctx.args.smoke and failed["alerts"] - passed["alerts"] > 1:
        s = run((passed["alerts"] + failed["alerts"]) // 2)
        if s["sustained"]:
            passed = s
        else:
            failed = s
    best = passed or max(steps, key=lambda s: s["evals_per_s"])
    full = max(steps, key=lambda s: (s["alerts"], s["evals_per_s"]))
    return {"steps": steps, "best": best, "full": full,
            "behind": failed["alerts"] if failed else None}


def throughput(ctx):
    """N alerts at 1 s, N raised until the engine falls behind."""
    return step_up(ctx, ctx.p["tp_steps"], lambda n: throughput_step(ctx, n))


# ---- 7. the listener: off and on, side by side ------------------------------

class Scraper:
    """GETs the status page and /metrics every second in a thread of its
    own, as Prometheus and a person with the page open would."""

    def __init__(self, url):
        self.url = url
        self.scrapes = self.failures = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.wait(1.0):
            for path in ("/metrics", "/"):
                try:
                    with urllib.request.urlopen(self.url + path, timeout=5) as r:
                        r.read()
                    self.scrapes += 1
                except OSError:
                    self.failures += 1

    def stop(self):
        self.done.set()
        self.thread.join()


def listener_round(ctx, n, listen):
    p = ctx.p
    name = "ls-%d-%s" % (n, "on" if listen else "off")
    alerts = ctx.file(name + "-alerts.json")
    targets = write_alerts(alerts, n, 1)
    timeline = ctx.file(name + "-timeline.json")
    with open(timeline, "w") as f:
        json.dump({q: [[0, QUIET]] for q in targets.values()}, f)
    emu = Emulator(ctx, name, alerts, timeline=timeline)
    eng = scraper = None
    try:
        eng = Engine(ctx, name, emu.url, ctx.file(name + ".db"), level="info",
                     args=["--listen", "127.0.0.1:0"] if listen else [])
        if listen:
            found = []
            wait_until(lambda: found.extend(re.findall(r" listening addr=(\S+)",
                                                       open(eng.log_path).read())) or found, 10)
            if not found:
                raise RuntimeError("the listener's address is not in %s" % eng.log_path)
            scraper = Scraper("http://" + found[0])
        base = emu.queries()
        wait_until(lambda: emu.queries() - base >= n, 60)
        time.sleep(p["tp_warm_secs"])
        q0, c0, t0 = emu.queries(), eng.cpu(), time.time()
        time.sleep(p["listener_window_secs"])
        q1, c1, t1 = emu.queries(), eng.cpu(), time.time()
        evals = q1 - q0
        out = {"listen": listen, "evals_per_s": evals / (t1 - t0),
               "cpu_s_per_1000": (c1 - c0) / evals * 1000 if evals else None,
               "scrapes": scraper.scrapes if scraper else 0,
               "scrape_failures": scraper.failures if scraper else 0}
        log("listener %s, %d alerts: %.0f evals/s, %.3f CPU s/1000, %d scrapes" % (
            "on" if listen else "off", n, out["evals_per_s"], out["cpu_s_per_1000"] or 0,
            out["scrapes"]))
        return out
    finally:
        if scraper:
            scraper.stop()
        if eng:
            eng.stop()
        emu.stop()


def listener(ctx):
    """Rounds of off then on, at a load the engine sustains: the two
    numbers of a round are taken a few seconds apart."""
    n = ctx.p["listener_alerts"]
    rounds = []
    for _ in range(ctx.p["listener_rounds"]):
        rounds.append((listener_round(ctx, n, False), listener_round(ctx, n, True)))

    def mean(on, key):
        vals = [r[1 if on else 0][key] for r in rounds if r[1 if on else 0][key] is not None]
        return sum(vals) / len(vals) if vals else None

    res = {"alerts": n, "rounds": rounds}
    for on in (False, True):
        for key in ("evals_per_s", "cpu_s_per_1000"):
            res["%s_%s" % (key, "on" if on else "off")] = mean(on, key)
    res["scrapes"] = sum(r[1]["scrapes"] for r in rounds)
    res["scrape_failures"] = sum(r[1]["scrape_failures"] for r in rounds)
    return res


# ---- 8. PostgreSQL: beside SQLite, several engines, takeover after kill -9 ---

class PgServer:
    """A scratch PostgreSQL server of the benchmark's own
    (tests/pg/pg-scratch.sh), stopped at the end of the workload."""

    SHARDS = 1024

    def __init__(self, ctx):
        self.uri_file = ctx.file("pg.uri")
        self.admin = subprocess.run([PG_SCRATCH, "start", self.uri_file], check=True,
                                    capture_output=True, text=True).stdout.strip()
        bindir = subprocess.run([PG_SCRATCH, "bindir"], check=True, capture_output=True,
                                text=True).stdout.strip()
        self.psql = os.path.join(bindir, "psql")
        host = re.search(r"host=([^&]+)", self.admin).group(1)
        with open(os.path.join(host, "data", "postmaster.pid")) as f:
            self.postmaster = int(f.readline())
        self.n = 0

    def database(self):
        self.n += 1
        name = "bench_%d" % self.n
        self.query(self.admin, "CREATE DATABASE " + name)
        return "postgresql:///%s?%s" % (name, self.admin.split("?", 1)[1])

    def query(self, uri, sql):
        return subprocess.run([self.psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", uri,
                               "-c", sql], check=True, capture_output=True,
                              text=True).stdout.strip()

    def cpu(self):
        """User + system CPU seconds of the server so far: the postmaster,
        its live children (backends, WAL writer, autovacuum...) and the
        children it reaped."""
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(pid) == self.postmaster:
                total += sum(int(x) for x in fields[11:15])
            elif int(fields[1]) == self.postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK

    def shards(self, db):
        """{engine: shards it holds now}."""
        out = self.query(db, "SELECT owner, count(*) FROM shard WHERE lease_until > now() "
                             "AND owner IS NOT NULL GROUP BY owner")
        return {k: int(v) for k, v in (line.split("|") for line in out.splitlines() if line)}

    def stop(self):
        subprocess.run([PG_SCRATCH, "stop", self.uri_file], capture_output=True)


def engine_in_ua(ua):
    return ua[ua.index(" (") + 2:-1] if ua and " (" in ua else None


WARN_VALUE = 150.0     # between every benchmark alert's warn and critical
LEVELS = [(FIRING, "critical"), (WARN_VALUE, "warning"), (QUIET, None)]


def owed_calls(changes):
    """The calls an alert that starts in PASS owes for its value stepping
    through changes (indexes into LEVELS): a notify on entering WARN or
    CRITICAL, a resolve on going back to PASS."""
    out, prev = [], None
    for c in changes:
        msg = LEVELS[c][1]
        if msg is not None:
            out.append(("notify", msg))
        elif prev is not None:
            out.append(("resolve", None))
        prev = msg
    return out


def match_calls(owed, records):
    """Calls received (the emulator's record) against calls owed, per alert,
    in order: returns (delivered, lost, duplicates, unexpected). A call
    received again right after itself is a duplicate."""
    got = {}
    for r in records:
        got.setdefault(r["alert"], []).append(
            (r["kind"], r.get("message") if r["kind"] == "notify" else None))
    delivered = lost = dups = unexpected = 0
    for name, want in owed.items():
        j = 0
        for call in got.pop(name, []):
            if j < len(want) and call == want[j]:
                j += 1
            elif j > 0 and call == want[j - 1]:
                dups += 1
            else:
                unexpected += 1
        delivered += j
        lost += len(want) - j
    unexpected += sum(len(v) for v in got.values())
    return delivered, lost, dups, unexpected


def takeovers(ctx, pg):
    """3 engines (--lease 3s) on one database; kill -9 of a random one every
    pg_kill_every s, restarted under a new id (so its shards wait for
    their leases to run out). A takeover lasts from the kill to the first
    query, by another engine, of the last alert the killed one queried in
    its last second.

    While the engines are killed, each alert's value steps CRITICAL ->
    WARN -> PASS and round again, pg_phase s at each level (longer than a
    takeover's target plus an interval, so some engine evaluates every
    level), the alerts' steps spread over a phase; after the kills the
    values hold and the engines drain the outbox. Every step owes one call
    (a notify on entering CRITICAL or WARN, a resolve on PASS): the calls
    the emulator recorded are matched against them, per alert and in
    order."""
    p = ctx.p
    n = p["pg_kill_alerts"]
    alerts = ctx.file("pgk-alerts.json")
    targets = write_alerts(alerts, n, 1)
    span = p["pg_kills"] * p["pg_kill_every"]
    first = PG_LEASE_S + 3          # the first kill, about, from the emulator's start
    nsteps = max(1, int(span // p["pg_phase"]) - 1)
    changes = [i % len(LEVELS) for i in range(nsteps)]
    timeline, owed = {}, {}
    for i, (name, q) in enumerate(sorted(targets.items())):
        at = first + p["pg_phase"] * i / n
        timeline[q] = [[0, QUIET]] + [[round(at + k * p["pg_phase"], 3), LEVELS[c][0]]
                                      for k, c in enumerate(changes)]
        owed[name] = owed_calls(changes)
    with open(ctx.file("pgk-timeline.json"), "w") as f:
        json.dump(timeline, f)
    emu = Emulator(ctx, "pgk", alerts, timeline=ctx.file("pgk-timeline.json"), request_log=True,
                   record=True)
    db = pg.database()
    engines, kills, count = {}, [], 0
    rng = random.Random(1)

    def start():
        nonlocal count
        count += 1
        eid = "k%d" % count
        engines[eid] = Engine(ctx, "pgk-" + eid, emu.url, db, level="info",
                              args=["--engine-id", eid, "--lease", "%ds" % PG_LEASE_S])

    def undelivered():
        return int(pg.query(db, "SELECT count(*) FROM outbox WHERE status <> 'delivered'"))

    try:
        for _ in range(3):
            start()
        time.sleep(max(0.0, emu.started_ms / 1000.0 + first - time.time()))
        for _ in range(p["pg_kills"]):
            eid = rng.choice(sorted(engines))
            eng = engines.pop(eid)
            eng.proc.kill()
            kills.append((time.time(), eid))
            eng.proc.wait()
            eng.stderr.close()
            start()
            time.sleep(p["pg_kill_every"])
        # The last kill's shards are taken over, and what is owed is sent.
        time.sleep(PG_LEASE_S + 2)
        drained = wait_until(lambda: undelivered() == 0, p["pg_drain_secs"], step=0.5)
        outbox = {k: int(v) for k, v in (line.split("|") for line in pg.query(
            db, "SELECT status, count(*) FROM outbox GROUP BY status").splitlines())}
    finally:
        for eng in engines.values():
            eng.stop()
        emu.stop()
    seqs = {}
    with open(emu.request_log) as f:
        for line in f:
            r = json.loads(line)
            if r.get("ep") == "query":
                seqs.setdefault(r["target"], []).append((r["us"] / 1e6, engine_in_ua(r.get("ua"))))
    waits, per_kill = [], []
    for tk, eid in kills:
        worst = None
        for target, seq in seqs.items():
            if not any(e == eid and tk - 1.0 <= t <= tk for t, e in seq):
                continue
            after = [(t, e) for t, e in seq if t > tk and e != eid]
            w = after[0][0] - tk if after else float("inf")
            if worst is None or w > worst[0]:
                worst = (w, target, after[0][1] if after else None)
        if worst is not None:
            waits.append(worst[0])
            # Which kill, which alert waited longest, who took it: an
            # outlier can be looked up in the engines' logs (--keep).
            per_kill.append({"at": tk, "killed": eid, "wait": worst[0], "target": worst[1],
                             "by": worst[2]})
            if worst[0] > PG_LEASE_S + 2:
                log("takeover %.2f s: %s killed at %.3f, %s queried again by %s"
                    % (worst[0], eid, tk, worst[1], worst[2]))
    waits.sort()
    delivered, lost, dups, unexpected = match_calls(owed, analysis.read_jsonl(emu.record))
    return {"kills": len(kills), "measured": len(waits), "waits": waits, "per_kill": per_kill,
            "p50": analysis.percentile(waits, 50) if waits else None,
            "max": waits[-1] if waits else None,
            "alerts": n, "owed": sum(len(v) for v in owed.values()), "delivered": delivered,
            "lost": lost, "duplicates": dups, "unexpected": unexpected,
            "outbox": outbox, "drained": drained}


def postgres(ctx):
    """The highest sustained evaluations per second of one engine on
    PostgreSQL, then on SQLite (starting at PostgreSQL's best, for CPU per
    evaluation at an equal load); 1, 2 and 3 engines on one database above
    what one sustains; takeovers after kill -9 with three engines while
    the alerts' values change."""
    r = {}
    if subprocess.run([PG_SCRATCH, "bindir"], capture_output=True).returncode != 0:
        log("postgres: SKIPPED, no PostgreSQL server binaries (install postgresql)")
        return {"skipped": "no PostgreSQL server binaries (install postgresql)"}
    p = ctx.p
    pg = PgServer(ctx)
    try:
        r["pg"] = step_up(ctx, p["pg_steps"], lambda n: throughput_step(
            ctx, n, db=pg.database(), label="pg", ceiling=False, pg=pg))
        best = r["pg"]["best"]["alerts"]
        r["sqlite"] = step_up(ctx, [best] + [n for n in p["pg_sqlite_steps"] if n > best],
                              lambda n: throughput_step(ctx, n, label="pgsq", ceiling=False))
        equal = [s for s in r["sqlite"]["steps"] if s["alerts"] == best]
        r["equal"] = {"alerts": best, "sqlite": equal[0] if equal else None,
                      "pg": r["pg"]["best"]}
        # Twice what one engine sustains (at least the first load it did
        # not): room for two or three engines to show more, if they can.
        over = max(r["pg"]["behind"] or 0, 2 * best)
        r["engines"] = [throughput_step(ctx, over, db=pg.database(), label="pgn%d" % k,
                                        engines=k, ceiling=False, pg=pg) for k in p["pg_engines"]]
        r["takeover"] = tk = takeovers(ctx, pg)
        log("takeover after kill -9: p50 %s s, max %s s over %d kills; calls owed %d, "
            "delivered %d, lost %d, duplicates %d, unexpected %d, outbox %s"
            % (fmt(tk["p50"], 2), fmt(tk["max"], 2), tk["kills"], tk["owed"], tk["delivered"],
               tk["lost"], tk["duplicates"], tk["unexpected"], tk["outbox"]))
    finally:
        pg.stop()
    return r


# ---- 3 and 4. schedule accuracy, detection to delivery ---------------------

def schedule_run(ctx, n, interval, warm, window, fire=False):
    """n alerts at interval s; with fire, each one's value goes CRITICAL once
    (spread over the run) and back, for detection to delivery."""
    p = ctx.p
    name = "sched-%d-%d" % (n, interval)
    alerts = ctx.file(name + "-alerts.json")
    targets = write_alerts(alerts, n, interval)
    timeline = None
    fire_secs = {}
    if fire:
        tl = {}
        for i, (a, q) in enumerate(sorted(targets.items())):
            # Spread over the run, off any round number of milliseconds.
            at = round(p["d2d_first"] + p["d2d_spread"] * i / n + 0.000371 * (i % 7), 6)
            tl[q] = [[0, QUIET], [at, FIRING], [at + p["d2d_hold"], QUIET]]
            fire_secs[a] = at
        timeline = ctx.file(name + "-timeline.json")
        with open(timeline, "w") as f:
            json.dump(tl, f)
    emu = Emulator(ctx, name, alerts, timeline=timeline, query_log=True, record=fire)
    eng = Engine(ctx, name, emu.url, ctx.file(name + ".db"))
    try:
        t_from = emu.started_ms + warm * 1000.0
        t_to = t_from + window * 1000.0
        time.sleep(max(0.0, (t_to - time.time() * 1000.0) / 1000.0) + 0.2)
        alive = eng.alive()
    finally:
        eng.stop()
        emu.stop()
    queries = analysis.read_jsonl(emu.query_log)
    res = analysis.schedule(queries, interval * 1000.0, list(targets.values()), t_from, t_to)
    res.update({"alerts": n, "interval": interval, "window": window, "engine_alive": alive})
    log("schedule %d alerts at %d s: |gap - interval| p50 %s p99 %s max %s ms, missed %d"
        % (n, interval, fmt(res["p50"]), fmt(res["p99"]), fmt(res["max"]), res["missed"]))
    if fire:
        fire_at = {a: emu.started_ms + s * 1000.0 for a, s in fire_secs.items()}
        lat, undelivered = analysis.detection_to_delivery(
            queries, analysis.read_jsonl(emu.record), fire_at, targets)
        res["d2d"] = {"n": len(lat), "undelivered": undelivered,
                      "p50": analysis.percentile(lat, 50), "p99": analysis.percentile(lat, 99),
                      "max": max(lat) if lat else None}
        log("detection to delivery: p50 %s p99 %s ms over %d notifies, %d undelivered"
            % (fmt(res["d2d"]["p50"]), fmt(res["d2d"]["p99"]), len(lat), undelivered))
    return res


def schedules(ctx):
    out = []
    for i, (n, interval, warm, window) in enumerate(ctx.p["sched"]):
        out.append(schedule_run(ctx, n, interval, warm, window, fire=(i == 0)))
    return out


# ---- 5. storm --------------------------------------------------------------

def storm(ctx):
    p = ctx.p
    n, at = p["storm_alerts"], p["storm_at"]
    alerts = ctx.file("storm-alerts.json")
    targets = write_alerts(alerts, n, 1)
    timeline = ctx.file("storm-timeline.json")
    with open(timeline, "w") as f:
        json.dump({q: [[0, QUIET], [at, FIRING]] for q in targets.values()}, f)
    emu = Emulator(ctx, "storm", alerts, timeline=timeline, query_log=True, record=True)
    eng = Engine(ctx, "storm", emu.url, ctx.file("storm.db"))
    t_fire = emu.started_ms + at * 1000.0

    def notified():
        return sum(1 for r in analysis.read_jsonl(emu.record) if r.get("kind") == "notify")

    try:
        time.sleep(max(0.0, t_fire / 1000.0 - time.time()))
        wait_until(lambda: notified() >= n, p["storm_wait"], step=0.25)
    finally:
        eng.stop()
        emu.stop()
    notes = [r["t"] for r in analysis.read_jsonl(emu.record) if r.get("kind") == "notify"]
    queries = [q["t"] for q in analysis.read_jsonl(emu.query_log) if q["t"] >= t_fire]
    res = {"alerts": n, "notified": len(notes),
           "all_in_s": (max(notes) - t_fire) / 1000.0 if len(notes) >= n else None,
           "last_notify_s": (max(notes) - t_fire) / 1000.0 if notes else None,
           "first_firing_query_s": (min(queries) - t_fire) / 1000.0 if queries else None}
    log("storm: %d/%d notifies, all within %s s of the step" % (len(notes), n, res["all_in_s"]))
    return res


# ---- 6. scale --------------------------------------------------------------

def scale(ctx):
    p = ctx.p
    n, interval = p["scale_alerts"], p["scale_interval"]
    alerts = ctx.file("scale-alerts.json")
    targets = write_alerts(alerts, n, interval)
    emu = Emulator(ctx, "scale", alerts, query_log=True)
    db = ctx.file("scale.db")
    res = {"alerts": n, "interval": interval, "secs": p["scale_secs"]}
    try:
        eng = Engine(ctx, "scale-1", emu.url, db)
        t_start = eng.spawned_ms
        peak = 0
        end = time.time() + p["scale_secs"]
        while time.time() < end and eng.alive():
            peak = max(peak, eng.peak_rss_kib() or 0)
            time.sleep(0.5)
        peak = max(peak, eng.peak_rss_kib() or 0) if eng.alive() else peak
        t_end = time.time() * 1000.0
        res["first_run_alive"] = eng.alive()
        eng.stop()
        res["db_mib"] = sum(os.path.getsize(f) for f in (db, db + "-wal", db + "-shm")
                            if os.path.exists(f)) / 1048576.0
        # Restart on the full database: process start to first evaluation.
        time.sleep(1.2)  # the emulator flushes its query log every second
        eng2 = Engine(ctx, "scale-2", emu.url, db)
        time.sleep(p["restart_secs"])
        peak2 = eng2.peak_rss_kib() or 0
        eng2.stop()
    finally:
        emu.stop()
    queries = analysis.read_jsonl(emu.query_log)
    first_run = [q for q in queries if t_start <= q["t"] <= t_end]
    after = [q["t"] for q in queries if q["t"] >= eng2.spawned_ms]
    sched = analysis.schedule(first_run, interval * 1000.0, list(targets.values()),
                              min((q["t"] for q in first_run), default=t_start), t_end)
    res.update({
        "peak_rss_mib": max(peak, peak2) / 1024.0,
        "peak_rss_first_mib": peak / 1024.0, "peak_rss_restart_mib": peak2 / 1024.0,
        "restart_first_eval_s": (min(after) - eng2.spawned_ms) / 1000.0 if after else None,
        "first_eval_s": (min(q["t"] for q in first_run) - t_start) / 1000.0 if first_run else None,
        "missed": sched["missed"], "evaluated_alerts": len({q["target"] for q in first_run}),
        "gap_p99": sched["p99"], "gap_max": sched["max"],
    })
    log("scale %d alerts: peak RSS %.1f MiB, restart to first evaluation %s s, db %.1f MiB, "
        "missed %d" % (n, res["peak_rss_mib"], res["restart_first_eval_s"], res["db_mib"],
                      res["missed"]))
    return res


# ---- report ----------------------------------------------------------------

def fmt(v, digits=1):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "%.*f" % (digits, v)
    return str(v)


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 1048576.0
    osname = platform.platform()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "%s, %d cores, %.1f GiB RAM, %s, Linux %s" % (model, os.cpu_count(), mem, osname,
                                                        platform.release())


def verdict(ok):
    if ok is None:
        return "n/a"
    return "yes" if ok else "**no**"


def table(r):
    """Rows (workload, metric, value, target, met)."""
    rows = []
    c = r.get("ceilings")
    if c:
        rows.append(("1a ceiling", "wrk GET /query, %d connections" % CONNECTIONS,
                     fmt(c["wrk_rps"], 0) + " req/s", "", ""))
        rows.append(("1b ceiling", "bare libcurl, %d connections (multi / easy)" % CONNECTIONS,
                     "%s / %s req/s; %s / %s µs CPU per request"
                     % (fmt(c["curl_multi"]["rps"], 0), fmt(c["curl_easy"]["rps"], 0),
                        fmt(c["curl_multi"]["cpu_us_per_req"]), fmt(c["curl_easy"]["cpu_us_per_req"])),
                     "", ""))
        rows.append(("1c ceiling", "bare SQLite, engine statements, batch 64 / 1",
                     "%s / %s evals/s; %s / %s µs CPU per eval"
                     % (fmt(c["sqlite_64"]["evals_per_s"], 0), fmt(c["sqlite_1"]["evals_per_s"], 0),
                        fmt(c["sqlite_64"]["cpu_us_per_eval"]), fmt(c["sqlite_1"]["cpu_us_per_eval"])),
                     "", ""))
    t = r.get("throughput")
    if t:
        b = t["best"]
        ceil = b["ceiling"]
        ratio = b["evals_per_s"] / ceil["rps"] if ceil["rps"] else None
        cpu_eval_us = b["cpu_s_per_1000"] * 1000 if b["cpu_s_per_1000"] else None
        cpu_ratio = cpu_eval_us / ceil["cpu_us_per_req"] if cpu_eval_us and ceil["cpu_us_per_req"] else None
        rows.append(("2 throughput", "highest sustained evals/s (alerts at 1 s)",
                     "%s (%d alerts)" % (fmt(b["evals_per_s"], 0), b["alerts"]), "", ""))
        rows.append(("2 throughput", "÷ bare libcurl ceiling (b), same emulator",
                     "%s (ceiling %s req/s)" % (fmt(ratio, 2), fmt(ceil["rps"], 0)), ">= 0.5",
                     verdict(ratio >= 0.5 if ratio is not None else None)))
        rows.append(("2 throughput", "CPU s per 1 000 evaluations",
                     fmt(b["cpu_s_per_1000"], 3), "", ""))
        rows.append(("2 throughput", "÷ bare libcurl CPU per request",
                     "%s (%s µs vs %s µs)" % (fmt(cpu_ratio, 2), fmt(cpu_eval_us), fmt(ceil["cpu_us_per_req"])),
                     "<= 1.5", verdict(cpu_ratio <= 1.5 if cpu_ratio is not None else None)))
        f = t.get("full", b)
        rpc = f["rows_per_commit"]
        rows.append(("2 throughput", "rows per evaluation commit at full load (%d alerts)" % f["alerts"],
                     fmt(rpc), ">= 50", verdict(rpc >= 50 if rpc is not None else None)))
        errs = sum(st.get("db_errors", 0) for st in t["steps"])
        rows.append(("2 throughput", "database errors logged (busy, locked, failed writes), all steps",
                     str(errs), "0", verdict(errs == 0)))
    for s in r.get("schedules", []):
        label = "%d alerts at %d s" % (s["alerts"], s["interval"])
        is_1s = s["interval"] == 1
        rows.append(("3 schedule", label + ": deviation of the gap from the interval, p50 / p99 / max",
                     "%s / %s / %s ms" % (fmt(s["p50"]), fmt(s["p99"]), fmt(s["max"])),
                     "p50 <= 2, p99 <= 20" if is_1s else "",
                     verdict(s["p50"] is not None and s["p50"] <= 2 and s["p99"] <= 20) if is_1s else ""))
        rows.append(("3 schedule", label + ": missed evaluations (%d gaps)" % s["gaps"],
                     str(s["missed"]), "0", verdict(s["missed"] == 0)))
        if "d2d" in s:
            d = s["d2d"]
            rows.append(("4 detection→delivery", "p50 / p99 (%d notifies, %d undelivered)"
                         % (d["n"], d["undelivered"]),
                         "%s / %s ms" % (fmt(d["p50"]), fmt(d["p99"])), "p99 <= 100",
                         verdict(d["p99"] is not None and d["p99"] <= 100 and d["undelivered"] == 0)))
    st = r.get("storm")
    if st:
        rows.append(("5 storm", "%d alerts CRITICAL at once: all notifies recorded after" % st["alerts"],
                     "%s s (%d/%d)" % (fmt(st["all_in_s"], 2), st["notified"], st["alerts"]),
                     "<= 2 s", verdict(st["all_in_s"] is not None and st["all_in_s"] <= 2)))
    sc = r.get("scale")
    if sc:
        label = "%d alerts at %d s" % (sc["alerts"], sc["interval"])
        rows.append(("6 scale", label + ": peak RSS", fmt(sc["peak_rss_mib"]) + " MiB", "<= 130 MiB",
                     verdict(sc["peak_rss_mib"] <= 130)))
        rows.append(("6 scale", "restart on the full database: start to first evaluation",
                     fmt(sc["restart_first_eval_s"], 2) + " s", "<= 1 s",
                     verdict(sc["restart_first_eval_s"] is not None and sc["restart_first_eval_s"] <= 1)))
        rows.append(("6 scale", "missed evaluations in %d s (%d alerts evaluated)"
                     % (sc["secs"], sc["evaluated_alerts"]), str(sc["missed"]), "0",
                     verdict(sc["missed"] == 0 and sc["evaluated_alerts"] == sc["alerts"])))
        rows.append(("6 scale", "database size", fmt(sc["db_mib"]) + " MiB", "", ""))
    ls = r.get("listener")
    if ls:
        off, on = ls["cpu_s_per_1000_off"], ls["cpu_s_per_1000_on"]
        ratio = on / off if on and off else None
        rows.append(("7 listener", "%d alerts at 1 s: evals/s, listener off / on (scraped every "
                     "second, %d scrapes, %d failed)" % (ls["alerts"], ls["scrapes"],
                                                         ls["scrape_failures"]),
                     "%s / %s" % (fmt(ls["evals_per_s_off"], 0), fmt(ls["evals_per_s_on"], 0)),
                     "", ""))
        rows.append(("7 listener", "CPU s per 1 000 evaluations, off / on",
                     "%s / %s (x %s)" % (fmt(off, 3), fmt(on, 3), fmt(ratio, 2)), "<= 1.1",
                     verdict(ratio <= 1.1 if ratio is not None else None)))
    pgr = r.get("postgres")
    if pgr and "skipped" in pgr:
        rows.append(("8 postgres", "not run", pgr["skipped"], "", "skipped"))
    elif pgr:
        rows += postgres_rows(pgr)
    return rows


def postgres_rows(pgr):
    rows = []
    bp, bs = pgr["pg"]["best"], pgr["sqlite"]["best"]
    ratio = bp["evals_per_s"] / bs["evals_per_s"] if bs["evals_per_s"] else None
    rows.append(("8 postgres", "highest sustained evals/s, one engine (alerts at 1 s): "
                 "PostgreSQL / SQLite, same workload",
                 "%s (%d alerts) / %s (%d alerts): %s" % (
                     fmt(bp["evals_per_s"], 0), bp["alerts"], fmt(bs["evals_per_s"], 0),
                     bs["alerts"], fmt(ratio, 2)), ">= 0.5",
                 verdict(ratio >= 0.5 if ratio is not None else None)))
    fp = pgr["pg"]["full"]
    if not fp["sustained"]:
        rows.append(("8 postgres", "PostgreSQL above it: %d alerts" % fp["alerts"],
                     "%s evals/s" % fmt(fp["evals_per_s"], 0), "", ""))
    eq = pgr["equal"]
    if eq["sqlite"]:
        sq, pq = eq["sqlite"], eq["pg"]
        both = (pq["cpu_s_per_1000"] + pq["server_cpu_s_per_1000"]
                if pq["cpu_s_per_1000"] is not None and pq["server_cpu_s_per_1000"] is not None
                else None)
        rows.append(("8 postgres", "CPU s per 1 000 evaluations at %d alerts/s: SQLite engine / "
                     "PostgreSQL engine + server = total" % eq["alerts"],
                     "%s / %s + %s = %s" % (fmt(sq["cpu_s_per_1000"], 3),
                                            fmt(pq["cpu_s_per_1000"], 3),
                                            fmt(pq["server_cpu_s_per_1000"], 3), fmt(both, 3)),
                     "", ""))
    en = pgr.get("engines") or []
    if en:
        rows.append(("8 postgres", "evals/s with %s engines on one database, %d alerts at 1 s "
                     "(engines, server and emulator share the 2 cores)"
                     % (" / ".join(str(s["engines"]) for s in en), en[0]["alerts"]),
                     " / ".join(fmt(s["evals_per_s"], 0) for s in en), "", ""))
        rows.append(("8 postgres", "CPU s per 1 000 evaluations, engines + server, with %s engines"
                     % " / ".join(str(s["engines"]) for s in en),
                     " / ".join(fmt((s["cpu_s_per_1000"] or 0) + (s["server_cpu_s_per_1000"] or 0),
                                    3) for s in en), "", ""))
    tk = pgr["takeover"]
    rows.append(("8 postgres", "takeover after kill -9, 3 engines, --lease %ds: p50 / max "
                 "(%d of %d kills measured)" % (PG_LEASE_S, tk["measured"], tk["kills"]),
                 "%s / %s s" % (fmt(tk["p50"], 2), fmt(tk["max"], 2)),
                 "max <= %d s" % (PG_LEASE_S + 2),
                 verdict(tk["max"] is not None and tk["max"] <= PG_LEASE_S + 2)))
    rows.append(("8 postgres", "calls owed while killing (%d alerts stepping CRITICAL, WARN, PASS): "
                 "owed / delivered / lost" % tk["alerts"],
                 "%d / %d / %d" % (tk["owed"], tk["delivered"], tk["lost"]), "lost 0",
                 verdict(tk["lost"] == 0 and tk["owed"] > 0)))
    rows.append(("8 postgres", "duplicates (calls in flight at a kill) / unexpected calls",
                 "%d / %d" % (tk["duplicates"], tk["unexpected"]),
                 "dup <= %d kills, unexpected 0" % tk["kills"],
                 verdict(tk["duplicates"] <= tk["kills"] and tk["unexpected"] == 0)))
    return rows


def pg_steps_table(pgr):
    out = ["| backend | engines | alerts | evals/s | sustained | engine CPU cores | engine CPU s / "
           "1 000 evals | server CPU cores | server CPU s / 1 000 evals | rows/commit (evals) | "
           "shards per engine |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    steps = ([("PostgreSQL", s) for s in pgr["pg"]["steps"]]
             + [("SQLite", s) for s in pgr["sqlite"]["steps"]]
             + [("PostgreSQL", s) for s in pgr.get("engines", [])])
    for backend, s in steps:
        out.append("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            backend, s.get("engines", 1), s["alerts"], fmt(s["evals_per_s"], 0),
            "yes" if s["sustained"] else "no", fmt(s["cpu_cores"], 2),
            fmt(s["cpu_s_per_1000"], 3), fmt(s.get("server_cpu_cores"), 2),
            fmt(s.get("server_cpu_s_per_1000"), 3), fmt(s["rows_per_commit"]),
            " / ".join(str(x) for x in s["shards"]) if s.get("shards") else ""))
    return "\n".join(out)


def markdown_table(rows):
    out = ["| workload | metric | result | target | met |", "|---|---|---|---|---|"]
    for row in rows:
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def steps_table(t):
    out = ["| alerts | evals/s | sustained | CPU cores | CPU s / 1 000 evals | rows/commit (evals) | "
           "ceiling (b) req/s | ceiling (b) µs CPU/req |", "|---|---|---|---|---|---|---|---|"]
    for s in t["steps"]:
        out.append("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
            s["alerts"], fmt(s["evals_per_s"], 0), "yes" if s["sustained"] else "no",
            fmt(s["cpu_cores"], 2), fmt(s["cpu_s_per_1000"], 3), fmt(s["rows_per_commit"]),
            fmt(s["ceiling"]["rps"], 0), fmt(s["ceiling"]["cpu_us_per_req"])))
    return "\n".join(out)


def report(r, args, started, elapsed):
    try:
        commit = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)),
                                 "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "unknown"
    rows = table(r)
    parts = [
        "# alert-exec benchmark results" + (" (smoke run: sizes too small to mean anything)" if args.smoke else ""),
        "",
        "Written by `scripts/bench.sh`%s on %s UTC, commit %s, in %.0f s."
        % (" --smoke" if args.smoke else "", started.strftime("%Y-%m-%d %H:%M"), commit, elapsed),
        "",
        "Machine: %s. Load average before the run: %s; CPU busy with other work between "
        "workloads: %s%s" % (
            machine(), r["loadavg"], ", ".join("%.0f%%" % (100 * b) for b in r["busy"]),
            ". **The machine was shared with other work during the run**, so absolute numbers "
            "are noisy; the ratios compare numbers measured a few seconds apart."
            if r["shared"] else "."),
        "",
        markdown_table(rows),
    ]
    if r.get("throughput"):
        parts += ["", "Throughput steps (ceiling (b) re-measured on each step's emulator just "
                  "before the engine starts):", "", steps_table(r["throughput"])]
    pgr = r.get("postgres")
    if pgr and "skipped" not in pgr:
        parts += ["", "PostgreSQL workload steps (one engine stepped up on PostgreSQL, then on "
                  "SQLite from PostgreSQL's best; then 1, 2 and 3 engines on one database; the "
                  "server's CPU is its postmaster's and its children's):", "",
                  pg_steps_table(pgr)]
    if args.notes and os.path.exists(args.notes):
        # The notes are their own document: linked, not copied.
        rel = os.path.relpath(args.notes, os.path.dirname(os.path.abspath(args.out)))
        parts += ["", "How it is measured, what changed in the engine and what the "
                  "profile says remains: [%s](%s)." % (os.path.basename(rel), rel)]
    return "\n".join(parts) + "\n", rows


def broken(r):
    """What did not work at all (as opposed to being slow): a smoke run
    fails on these."""
    out = []
    c = r.get("ceilings")
    if c and (c["curl_multi"]["requests"] == 0 or c["sqlite_64"]["evaluations"] == 0):
        out.append("a ceiling measured nothing")
    t = r.get("throughput")
    if t and (t["best"]["evals_per_s"] <= 0 or t["full"]["rows_per_commit"] is None):
        out.append("throughput: no evaluations or no commit counters")
    for s in r.get("schedules", []):
        if not s["engine_alive"] or s["gaps"] == 0:
            out.append("schedule: engine died or nothing evaluated")
        if "d2d" in s and (s["d2d"]["n"] == 0 or s["d2d"]["undelivered"] > 0):
            out.append("detection to delivery: notifies missing")
    st = r.get("storm")
    if st and st["notified"] < st["alerts"]:
        out.append("storm: %d of %d notifies" % (st["notified"], st["alerts"]))
    pgr = r.get("postgres")
    if pgr and "skipped" not in pgr:
        if pgr["pg"]["best"]["evals_per_s"] <= 0 or pgr["sqlite"]["best"]["evals_per_s"] <= 0:
            out.append("postgres: no evaluations")
        if any(s["evals_per_s"] <= 0 for s in pgr.get("engines", [])):
            out.append("postgres: no evaluations with several engines")
        tk = pgr["takeover"]
        if tk["measured"] == 0 or tk["delivered"] == 0:
            out.append("postgres: no takeover measured, or no call delivered while killing")
    sc = r.get("scale")
    if sc and (sc["restart_first_eval_s"] is None or sc["evaluated_alerts"] < sc["alerts"]):
        out.append("scale: not every alert evaluated, or no evaluation after the restart")
    ls = r.get("listener")
    if ls and (ls["scrapes"] == 0 or ls["scrape_failures"] > 0 or not ls["evals_per_s_on"]):
        out.append("listener: no scrape, a failed scrape, or no evaluation with it on")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--only", default="ceilings,throughput,schedule,storm,scale,listener,postgres")
    ap.add_argument("--notes", help="the notes on the results (analysis, profiles), linked")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args()
    ctx = Context(args)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.time()
    r = {"loadavg": "%.2f" % os.getloadavg()[0], "busy": []}
    only = set(args.only.split(","))
    workloads = [("ceilings", "ceilings", ceilings), ("throughput", "throughput", throughput),
                 ("schedule", "schedules", schedules), ("storm", "storm", storm),
                 ("scale", "scale", scale), ("listener", "listener", listener),
                 ("postgres", "postgres", postgres)]
    log("work directory", ctx.dir)
    try:
        for key, field, fn in workloads:
            if key in only:
                # Between workloads nothing of ours runs: what is busy is
                # someone else's.
                r["busy"].append(busy_share(ctx.p["busy_secs"]))
                t = time.time()
                r[field] = fn(ctx)
                log("%s took %.1f s" % (key, time.time() - t))
        r["busy"].append(busy_share(ctx.p["busy_secs"]))
    finally:
        ctx.cleanup()
    r["shared"] = max(r["busy"]) > 0.1
    text, rows = report(r, args, started, time.time() - t0)
    with open(args.out, "w") as f:
        f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1, default=str)
    print(markdown_table(rows))
    print("\nwritten to", args.out)
    problems = broken(r)
    for p in problems:
        log("BROKEN:", p)
    return 1 if problems and args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
