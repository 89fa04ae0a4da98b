"""Shared helpers of the integration tests: start the real emulator and the
real engine, write timelines and alert files, read the emulator's record.

Every test is a plain script: it exits 0 when its assertions hold and
prints what it checked; ctest runs each one (tests/CMakeLists.txt)."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

BUILD_DIR = os.environ.get("BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
ENGINE = os.path.join(BUILD_DIR, "alert-exec")
EMULATOR = os.path.join(BUILD_DIR, "alerts-emulator")

# ALERT_EXEC_TEST_DB=postgresql runs the engines of a test on PostgreSQL:
# each database the test asks for (Workdir.database) is a new one on the
# scratch server whose URI is in the file ALERT_EXEC_PG_URI_FILE names
# (tests/pg/pg-scratch.sh, started by ctest's fixture). Otherwise SQLite.
ON_PG = os.environ.get("ALERT_EXEC_TEST_DB") == "postgresql"


def _pg_admin_uri():
    path = os.environ.get("ALERT_EXEC_PG_URI_FILE")
    if not path or not os.path.exists(path):
        raise AssertionError("ALERT_EXEC_TEST_DB=postgresql needs ALERT_EXEC_PG_URI_FILE naming "
                             "a scratch server's URI (tests/pg/pg-scratch.sh start FILE)")
    with open(path) as f:
        return f.read().strip()


def _psql():
    import glob
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    return found[-1] if found else "psql"


def _pg_value(text):
    """A psql field as Python would get it from sqlite3: int, float, str
    or None."""
    if text == "\\N":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def pg_query(uri, query, args=()):
    """Rows of query on the database at uri, through psql; '?' marks the
    args (numbers or strings), as with sqlite3."""
    parts = query.split("?")
    if len(parts) - 1 != len(args):
        raise AssertionError("%d args for %d '?' in %s" % (len(args), len(parts) - 1, query))
    sql = parts[0]
    for a, rest in zip(args, parts[1:]):
        lit = str(a) if isinstance(a, (int, float)) else "'" + str(a).replace("'", "''") + "'"
        sql += lit + rest
    p = subprocess.run([_psql(), "-X", "-q", "-A", "-t", "-F", "\t", "-P", "null=\\N",
                        "-v", "ON_ERROR_STOP=1", "-d", uri, "-c", sql],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError("psql %s: %s" % (sql, p.stderr.strip()))
    return [tuple(_pg_value(v) for v in line.split("\t"))
            for line in p.stdout.splitlines() if line != ""]


def sql_rows(db, query, args=()):
    """Rows of query on the database db (a SQLite path or a PostgreSQL URI);
    a statement that writes is committed."""
    if db.startswith("postgresql://"):
        return pg_query(db, query, args)
    con = sqlite3.connect(db, timeout=30)
    try:
        rows = con.execute(query, args).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def log(*args):
    print(*args, flush=True)


def alert(name, query=None, interval=1, repeat=3, sustain=0, warn=100, crit=200,
          warn_msg="warning", crit_msg="critical"):
    """One alert definition as the server sends it."""
    return {"name": name, "query": query or ("q-" + name), "intervalSecs": interval,
            "repeatIntervalSecs": repeat, "sustainSecs": sustain,
            "warn": {"value": warn, "message": warn_msg},
            "critical": {"value": crit, "message": crit_msg}}


class Workdir:
    """A temporary directory that is removed at exit unless KEEP_TEST_DIR is set."""

    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix="alert-exec-" + name + ".")

    def file(self, name):
        return os.path.join(self.path, name)

    def database(self, name):
        """A new, empty database for --db: a file of the directory, or on
        PostgreSQL (ALERT_EXEC_TEST_DB) a database of its own on the
        scratch server, dropped at cleanup."""
        if not ON_PG:
            return self.file(name + ".db")
        admin = _pg_admin_uri()
        self.pg_count = getattr(self, "pg_count", 0) + 1
        db = "it_%d_%d_%s" % (os.getpid(), self.pg_count, re.sub(r"[^a-z0-9_]", "_", name.lower()))
        pg_query(admin, "CREATE DATABASE " + db)
        self.pg_databases = getattr(self, "pg_databases", []) + [db]
        return "postgresql:///%s?%s" % (db, admin.split("?", 1)[1])

    def write_json(self, name, obj):
        p = self.file(name)
        with open(p, "w") as f:
            json.dump(obj, f)
        return p

    def sanitizer_reports(self):
        """The first AddressSanitizer, ThreadSanitizer or UBSan line of each
        log in the directory (engine, --once and emulator logs): a killed
        daemon's report is only there, whatever its exit status."""
        import glob
        found = []
        for path in sorted(glob.glob(os.path.join(self.path, "*.log"))):
            with open(path, errors="replace") as f:
                for line in f:
                    if "Sanitizer" in line or ": runtime error: " in line:
                        found.append("%s: %s" % (os.path.basename(path), line.rstrip()))
                        break
        return found

    def show_logs(self, lines=40):
        """The last lines of every log of the directory, on stderr."""
        for name in sorted(os.listdir(self.path)):
            if not name.endswith(".log"):
                continue
            with open(os.path.join(self.path, name), errors="replace") as f:
                tail = f.readlines()[-lines:]
            sys.stderr.write("---- %s (last %d lines; kept in %s)\n%s"
                             % (name, len(tail), self.path, "".join(tail)))

    def cleanup(self):
        """The end of a test: fails on a sanitizer report in any log (the
        directory is then kept), else removes the directory."""
        found = self.sanitizer_reports()
        if found:
            raise AssertionError("sanitizer reports (logs kept in %s):\n%s"
                                 % (self.path, "\n".join(found)))
        # Called from a test's finally while its failure propagates: the
        # logs' tails go to stderr and the directory stays, so that a
        # failure in CI can be read afterwards.
        if sys.exc_info()[0] is not None:
            self.show_logs()
            return
        if not os.environ.get("KEEP_TEST_DIR"):
            subprocess.run(["rm", "-rf", self.path])
            for db in getattr(self, "pg_databases", []):
                pg_query(_pg_admin_uri(), "DROP DATABASE %s WITH (FORCE)" % db)


class Emulator:
    """The alerts-emulator on a free port."""

    def __init__(self, wd, args=(), alerts=None, timeline=None, record=True, name="emu",
                 port=0):
        """port 0 picks a free port; a given port (say, that of an emulator
        just stopped) lets a running engine reach the new one at the same URL."""
        self.wd = wd
        self.record_path = wd.file(name + "-record.jsonl") if record else None
        cmd = [EMULATOR, "--port", str(port)]
        if alerts is not None:
            cmd += ["--alerts", wd.write_json(name + "-alerts.json", alerts)]
        if timeline is not None:
            cmd += ["--timeline", wd.write_json(name + "-timeline.json", timeline)]
        if self.record_path:
            cmd += ["--record", self.record_path]
        cmd += list(args)
        self.stderr_path = wd.file(name + "-stderr.log")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError("emulator did not start: %r, stderr: %s" % (line, self.read_stderr()))
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d" % self.port
        self.started = time.time()

    def read_stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def records(self):
        """Accepted notify/resolve calls, oldest first."""
        if not self.record_path or not os.path.exists(self.record_path):
            return []
        with open(self.record_path) as f:
            return [json.loads(l) for l in f if l.strip()]

    def stop(self):
        """SIGTERM; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        return self.proc.returncode


class Engine:
    """The alert-exec daemon (or a --once run) on a database. Its HTTP
    listener is off unless listen=True: many daemons run side by side in
    the tests, and the default port would clash. With listen=True it binds
    an ephemeral port on 127.0.0.1; listen_url() reads it from the log."""

    def __init__(self, wd, server, db=None, args=(), name="engine", listen=False):
        self.wd = wd
        self.listen = listen
        self.server = server
        self.db = db or wd.database("alert-exec")
        # A test's PostgreSQL run must not quietly run on a SQLite file.
        if ON_PG and not self.db.startswith("postgresql://"):
            raise AssertionError("ALERT_EXEC_TEST_DB=postgresql, but the engine was given %r: "
                                 "take databases from Workdir.database" % self.db)
        self.args = list(args)
        self.name = name
        self.proc = None
        self.runs = 0

    def cmd(self, extra=()):
        args = self.args + list(extra)
        # On PostgreSQL an engine restarted under its own --engine-id takes
        # back at once the shards its earlier process held (a new id would
        # wait for their leases to run out), as a service with a fixed id
        # does.
        if self.db.startswith("postgresql://") and "--engine-id" not in args:
            args = ["--engine-id", self.name] + args
        listen = ["--listen", "127.0.0.1:0" if self.listen else "off"]
        return [ENGINE, "--server", self.server, "--db", self.db, "-l", "debug"] + listen + args

    def start(self, extra=()):
        self.runs += 1
        self.stderr_path = self.wd.file("%s-%d.log" % (self.name, self.runs))
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(self.cmd(extra), stdout=subprocess.PIPE, stderr=self.stderr)
        return self

    def kill(self, sig=signal.SIGKILL, timeout=15):
        """Sends sig and waits; returns (exit status, seconds it took)."""
        t0 = time.time()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("engine did not exit within %ss of signal %d" % (timeout, sig))
        self.stderr.close()
        return rc, time.time() - t0

    def once(self, extra=(), timeout=60):
        """Runs --once; returns (exit status, stdout, stderr)."""
        self.runs += 1
        p = subprocess.run(self.cmd(["--once"] + list(extra)), capture_output=True, text=True,
                           timeout=timeout)
        with open(self.wd.file("%s-%d.log" % (self.name, self.runs)), "w") as f:
            f.write(p.stderr)
        return p.returncode, p.stdout, p.stderr

    def wait_started(self, timeout=10):
        """Waits until the daemon logged that it started: the database is
        open, locked and migrated, so the test may read it."""
        wait_until(lambda: " started " in self.log_text() or self.proc.poll() is not None,
                   timeout, "the daemon to start")
        if self.proc.poll() is not None:
            raise AssertionError("daemon exited with %d:\n%s" % (self.proc.returncode,
                                                                  self.log_text()))
        return self

    def listen_url(self, timeout=10):
        """http://ADDR:PORT of the listener, from the daemon's
        "listening addr=..." line."""
        import re
        found = wait_until(lambda: re.search(r" listening addr=(\S+)", self.log_text())
                           or self.proc.poll() is not None, timeout, "the listener's address")
        if self.proc.poll() is not None:
            raise AssertionError("daemon exited with %d:\n%s" % (self.proc.returncode,
                                                                  self.log_text()))
        return "http://" + found.group(1)

    def log_text(self):
        with open(self.stderr_path) as f:
            return f.read()

    def sql(self, query, args=()):
        return sql_rows(self.db, query, args)


def calls(records, alert_name=None):
    """[(kind, alert, message)] of the records, optionally of one alert."""
    out = []
    for r in records:
        if alert_name is None or r["alert"] == alert_name:
            out.append((r["kind"], r["alert"], r.get("message", "")))
    return out


def wait_until(pred, timeout, what, step=0.05):
    """Polls pred until it is true; fails naming what was awaited."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def summary(stdout):
    """The counters of a --once run's summary line
    (evaluated=N notified=N resolved=N failed=N pending=N) as a dict."""
    lines = [l for l in stdout.splitlines() if l.startswith("evaluated=")]
    if len(lines) != 1:
        raise AssertionError("no single summary line in stdout: %r" % stdout)
    return {k: int(v) for k, v in (f.split("=", 1) for f in lines[0].split())}


def alert_state(eng, name):
    """The alert_status row of one alert as a dict, or None."""
    if eng.db.startswith("postgresql://"):
        names = [r[0] for r in pg_query(
            eng.db, "select column_name from information_schema.columns "
            "where table_name = 'alert_status' order by ordinal_position")]
        rows = pg_query(eng.db, "select * from alert_status where name = ?", (name,))
        return dict(zip(names, rows[0])) if rows else None
    con = sqlite3.connect(eng.db, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        row = con.execute("select * from alert_status where name = ?", (name,)).fetchone()
        return dict(row) if row else None
    finally:
        con.close()


def now_ms():
    """Wall-clock time in integer milliseconds since the epoch, the unit of
    the database's times and of the emulator's record."""
    return int(time.time() * 1000)
