"""Database faults: a read-only database file or directory, a full disk (at
start, and filling up while the daemon runs with firing alerts), a corrupt
file (garbage, and a valid database with garbage over a middle page), a
newer schema version, and a second engine on the same file.

Each one ends the engine with its exit code (74 database error, 75 for the
second engine) and one CRITICAL line on stderr naming the problem, and
leaves the database as it was: a write that fails is never taken for one
that worked, and a restart once the fault is gone carries on from the last
committed state.

Read-only files and full disks need mounts (tests run as root: a read-only
bind mount, a small tmpfs); without the privilege those cases cannot run:
the others still run, each case that could not is named, and the script
exits SKIPPED (77), which ctest reports as a skipped test, never a pass
(scripts/test.sh fails on it in CI, which runs as root)."""

import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

from harness import Emulator, Engine, Workdir, alert, check, log, wait_until

EXIT_DB = 74
EXIT_TEMPFAIL = 75
SKIPPED = 77    # SKIP_RETURN_CODE in tests/CMakeLists.txt

# The cases that could not run here, with why.
skips = []
# The garbage written over files and pages (DB_FAULTS_SEED replays it).
SEED = int(os.environ.get("DB_FAULTS_SEED") or time.time_ns() % 1000000007)
garbage_rng = random.Random(SEED)


def skip(case, why):
    skips.append("%s: %s" % (case, why))
    log("  SKIP %s: %s" % (case, why))


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


class Mount:
    """A mount that is undone at exit (lazily, should something hold it)."""

    def __init__(self):
        self.points = []

    def tmpfs(self, path, size):
        os.makedirs(path, exist_ok=True)
        r = run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path])
        if r.returncode != 0:
            return "mount tmpfs: " + r.stderr.strip()
        self.points.append(path)
        return None

    def bind_ro(self, path):
        """Makes path (a file or a directory) read-only where it is."""
        r = run(["mount", "--bind", path, path])
        if r.returncode != 0:
            return "mount --bind: " + r.stderr.strip()
        self.points.append(path)
        r = run(["mount", "-o", "remount,bind,ro", path])
        if r.returncode != 0:
            return "remount ro: " + r.stderr.strip()
        return None

    def undo(self, path):
        while path in self.points:
            self.points.remove(path)
            if run(["umount", path]).returncode != 0:
                run(["umount", "-l", path])

    def undo_all(self):
        for p in reversed(list(self.points)):
            self.undo(p)


def critical_lines(text):
    return [l for l in text.splitlines() if " CRITICAL " in l]


def check_fatal(what, rc, stderr, code, *words):
    """Exit code `code` and exactly one CRITICAL line, carrying every word
    (a word may be a tuple of alternatives)."""
    crit = critical_lines(stderr)
    check(rc == code, "%s: exit %d, expected %d\n%s" % (what, rc, code, stderr[-3000:]))
    check(len(crit) == 1, "%s: %d CRITICAL lines, expected one:\n%s" % (what, len(crit), stderr[-3000:]))
    for w in words:
        alts = w if isinstance(w, tuple) else (w,)
        check(any(a.lower() in crit[0].lower() for a in alts),
              "%s: CRITICAL line does not say %r: %s" % (what, w, crit[0]))
    log("  %s: exit %d: %s" % (what, rc, crit[0].split(" CRITICAL ", 1)[1]))


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def dump(db):
    """Every row of the engine's tables, for before/after comparisons."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        out = {}
        for t in ("alert", "alert_state", "outbox", "transition"):
            out[t] = con.execute("select * from %s order by 1" % t).fetchall()
        return out
    finally:
        con.close()


def integrity(db):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("pragma integrity_check").fetchall()
    finally:
        con.close()


def make_db(wd, emu, name, extra=()):
    """A database with state: two --once runs against the emulator."""
    eng = Engine(wd, emu.url, db=wd.file(name), name=name.replace("/", "-"), args=list(extra))
    for _ in range(2):
        rc, out, err = eng.once()
        check(rc in (0, 75), "building %s: --once exit %d\n%s" % (name, rc, err))
    con = sqlite3.connect(eng.db)
    con.execute("pragma wal_checkpoint(truncate)")
    con.close()
    return eng


def check_corrupt(wd, emu):
    # Garbage bytes.
    garbage = wd.file("garbage.db")
    with open(garbage, "wb") as f:
        f.write(garbage_rng.randbytes(64 * 1024))
    before = file_bytes(garbage)
    eng = Engine(wd, emu.url, db=garbage, name="garbage")
    rc, _, err = eng.once()
    check_fatal("garbage file", rc, err, EXIT_DB, "not a database", garbage)
    check(file_bytes(garbage) == before, "the engine wrote to a garbage file")

    # A valid database with garbage over a middle page: every table's pages
    # are hit in turn (the middle page of each), daemon and --once alike.
    src = make_db(wd, emu, "valid.db")
    con = sqlite3.connect(src.db)
    try:
        pages = con.execute("select name, pageno from dbstat where pageno > 1 order by pageno").fetchall()
    except sqlite3.OperationalError:
        pages = None
    page_count = con.execute("pragma page_count").fetchone()[0]
    page_size = con.execute("pragma page_size").fetchone()[0]
    con.close()
    victims = {}
    if pages:
        by_table = {}
        for name, pg in pages:
            by_table.setdefault(name, []).append(pg)
        for name, pgs in by_table.items():
            victims[name] = pgs[len(pgs) // 2]
    victims["middle of the file"] = page_count // 2 + 1
    check(page_count >= 20, "the test database has only %d pages" % page_count)
    for i, (name, pg) in enumerate(sorted(victims.items())):
        db = wd.file("corrupt-%d.db" % i)
        shutil.copyfile(src.db, db)
        with open(db, "r+b") as f:
            f.seek((pg - 1) * page_size)
            f.write(garbage_rng.randbytes(page_size))
        before = file_bytes(db)
        eng = Engine(wd, emu.url, db=db, name="corrupt-%d" % i)
        if i % 2 == 0:
            rc, _, err = eng.once(timeout=30)
        else:
            eng.start()
            try:
                rc = eng.proc.wait(15)
            except subprocess.TimeoutExpired:
                eng.proc.kill()
                eng.proc.wait()
                rc = "still running after 15 s"
            eng.stderr.close()
            err = eng.log_text()
        check_fatal("garbage over page %d (%s)" % (pg, name), rc, err, EXIT_DB,
                    ("corrupt", "malformed"), db)
        check(file_bytes(db) == before, "the engine wrote to the corrupt database (page %d)" % pg)


def check_newer(wd, emu):
    eng = make_db(wd, emu, "newer.db")
    con = sqlite3.connect(eng.db)
    con.execute("pragma user_version = 99")
    con.close()
    before = dump(eng.db)
    rc, _, err = eng.once()
    check_fatal("user_version 99", rc, err, EXIT_DB, "newer", "99")
    eng.start()
    rc = eng.proc.wait(15)
    eng.stderr.close()
    check_fatal("user_version 99 (daemon)", rc, eng.log_text(), EXIT_DB, "newer", "99")
    check(dump(eng.db) == before, "the engine changed a database of a newer version")
    con = sqlite3.connect(eng.db)
    check(con.execute("pragma user_version").fetchone()[0] == 99, "user_version changed")
    con.close()


def check_second_engine(wd, emu):
    first = Engine(wd, emu.url, db=wd.file("shared.db"), name="first").start()
    try:
        wait_until(lambda: "definitions loaded" in first.log_text(), 15, "the first engine to start")
        second = Engine(wd, emu.url, db=first.db, name="second")
        rc, _, err = second.once()
        check_fatal("second engine (--once)", rc, err, EXIT_TEMPFAIL, "pid %d" % first.proc.pid)
        second.start()
        rc = second.proc.wait(15)
        second.stderr.close()
        check_fatal("second engine (daemon)", rc, second.log_text(), EXIT_TEMPFAIL,
                    "pid %d" % first.proc.pid, first.db)
        # The first one is unharmed and still evaluating.
        t0 = first.sql("select max(last_eval) from alert_state")[0][0] or 0
        wait_until(lambda: (first.sql("select max(last_eval) from alert_state")[0][0] or 0) > t0, 10,
                   "the first engine to keep evaluating")
        check(first.proc.poll() is None, "the first engine died")
        rc, _ = first.kill(signal.SIGTERM)
        check(rc == 0, "first engine exit %d after SIGTERM" % rc)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    # The holder is gone: the lock is free again.
    rc, _, err = Engine(wd, emu.url, db=first.db, name="third").once()
    check(rc in (0, 75) and "in use" not in err, "after the first engine stopped: exit %d\n%s" % (rc, err))


def check_read_only(wd, emu, mounts):
    # The database file read-only, its directory writable.
    eng = make_db(wd, emu, "ro-file.db")
    before = dump(eng.db)
    if os.geteuid() == 0:
        why = mounts.bind_ro(eng.db)
        if why:
            mounts.undo(eng.db)
            skip("read-only file", why)
            return
    else:
        os.chmod(eng.db, 0o444)
    try:
        check(not os.access(eng.db, os.W_OK) or os.geteuid() == 0, "chmod did not take")
        with open(eng.db, "r+b"):
            pass
        raise AssertionError("the database file is still writable")
    except OSError:
        pass
    try:
        rc, _, err = eng.once()
        check_fatal("read-only database file", rc, err, EXIT_DB, "read-only", eng.db)
        eng.start()
        rc = eng.proc.wait(15)
        eng.stderr.close()
        check_fatal("read-only database file (daemon)", rc, eng.log_text(), EXIT_DB, "read-only")
    finally:
        mounts.undo(eng.db)
        os.chmod(eng.db, 0o644)
    check(dump(eng.db) == before, "the database changed")
    rc, _, err = eng.once()
    check(rc in (0, 75), "writable again: --once exit %d\n%s" % (rc, err))

    # The whole directory read-only.
    d = wd.file("ro-dir")
    os.makedirs(d)
    eng = make_db(wd, emu, "ro-dir/alert-exec.db")
    if os.geteuid() != 0:
        skip("read-only directory", "not root")
        return
    why = mounts.bind_ro(d)
    if why:
        mounts.undo(d)
        skip("read-only directory", why)
        return
    try:
        rc, _, err = eng.once()
        check_fatal("read-only directory", rc, err, EXIT_DB, "read-only", d)
    finally:
        mounts.undo(d)


ALERTS = ([alert("steady-%d" % i, interval=1, repeat=3600, warn=10, crit=20) for i in range(20)] +
          [alert("flip-%d" % i, interval=1, repeat=3600, warn=10, crit=20) for i in range(20)])
TIMELINE = dict([("q-steady-%d" % i, [[0, 25]]) for i in range(20)] +
                [("q-flip-%d" % i, [[0, 5], [1, 25]]) for i in range(20)])


def fill(path):
    """Writes zeros into path until the filesystem is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 4096, 512, 1):
            block = b"\0" * size
            try:
                while os.write(fd, block) == size:
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)


def check_disk_full(wd, mounts):
    if os.geteuid() != 0:
        skip("disk full", "not root")
        return
    # Full at start: a fresh database cannot even be created.
    d = wd.file("full-at-start")
    why = mounts.tmpfs(d, "1m")
    if why:
        skip("disk full", why)
        return
    emu = Emulator(wd, alerts=ALERTS, timeline=TIMELINE, name="emu-start")
    try:
        # The lock file of b.db exists: it is the database that cannot grow.
        with open(os.path.join(d, "b.db.lock"), "w") as f:
            f.write("1\n")
        fill(os.path.join(d, "filler"))
        for db in ("a.db", "b.db"):
            rc, _, err = Engine(wd, emu.url, db=os.path.join(d, db), name="full-start").once()
            check(rc == EXIT_DB, "fresh database on a full disk: exit %d\n%s" % (rc, err))
            crit = critical_lines(err)
            check(len(crit) == 1 and re.search(r"no space left|disk is full", crit[0], re.I),
                  "fresh database on a full disk: CRITICAL lines %s" % crit)
            log("  full disk at start: exit %d: %s" % (rc, crit[0].split(" CRITICAL ", 1)[1]))
    finally:
        emu.stop()
        mounts.undo(d)

    # Full while running with firing alerts (steady ones CRITICAL, the flip
    # ones going up and down every second), so evaluations, transitions and
    # deliveries are all writing when the space runs out.
    d = wd.file("full")
    why = mounts.tmpfs(d, "8m")
    if why:
        skip("disk full", why)
        return
    emu = Emulator(wd, alerts=ALERTS, timeline=dict(TIMELINE), name="emu-full",
                   args=["--cycle", "2"])
    db = os.path.join(d, "alert-exec.db")
    filler = os.path.join(d, "filler")
    eng = Engine(wd, emu.url, db=db, name="full")
    try:
        eng.start()
        wait_until(lambda: "definitions loaded" in eng.log_text(), 15, "definitions")
        wait_until(lambda: eng.sql("select count(*) from transition")[0][0] >= 60, 20,
                   "transitions to flow")
        wait_until(lambda: eng.sql("select count(*) from outbox where status = 'delivered' and kind = 'resolve'")[0][0] >= 5,
                   20, "resolves to flow")
        t_fill = time.time()
        fill(filler)
        try:
            rc = eng.proc.wait(20)
        except subprocess.TimeoutExpired:
            raise AssertionError("the daemon kept running on a full disk:\n" + eng.log_text()[-3000:])
        took = time.time() - t_fill
        eng.stderr.close()
        text = eng.log_text()
        crit = critical_lines(text)
        check(rc == EXIT_DB, "disk full while running: exit %d\n%s" % (rc, text[-3000:]))
        check(len(crit) == 1, "disk full while running: CRITICAL lines:\n%s" % "\n".join(crit))
        check(re.search(r"disk is full|no space left", crit[0], re.I),
              "the CRITICAL line does not name the full disk: %s" % crit[0])
        retries = [l for l in text.splitlines() if " ERROR " in l and "disk is full" in l]
        check(len(retries) >= 2, "no retry before giving up: %s" % retries)
        log("  disk full while running: exit %d after %.1fs, %d failed attempts: %s"
            % (rc, took, len(retries), crit[0].split(" CRITICAL ", 1)[1]))
        os.unlink(filler)
        # What the log says happened is what the database holds: nothing
        # was taken for written when it was not.
        snap = dump(db)
        check(integrity(db) == [("ok",)], "integrity_check after the full disk: %s" % integrity(db))
        logged_transitions = len(re.findall(r" INFO transition alert=", text))
        logged_delivered = len(re.findall(r" INFO delivered kind=", text))
        logged_enqueued = len(re.findall(r" DEBUG enqueued kind=", text))
        delivered = [r for r in snap["outbox"] if r[10] == "delivered"]  # status
        check(logged_transitions == len(snap["transition"]),
              "log shows %d transitions, database holds %d" % (logged_transitions, len(snap["transition"])))
        check(logged_enqueued == len(snap["outbox"]),
              "log shows %d calls enqueued, database holds %d" % (logged_enqueued, len(snap["outbox"])))
        check(logged_delivered == len(delivered),
              "log shows %d deliveries, database holds %d" % (logged_delivered, len(delivered)))
        # Calls the server took that the database does not have as delivered:
        # in flight when the write failed, at most one per delivery worker.
        server_calls = len(emu.records())
        check(len(delivered) <= server_calls <= len(delivered) + 2,
              "server took %d calls, database says %d delivered" % (server_calls, len(delivered)))

        # Space again: a restart carries on from exactly that state.
        eng.start()
        wait_until(lambda: "definitions loaded" in eng.log_text(), 15, "restart")
        wait_until(lambda: eng.sql("select count(*) from outbox where status = 'pending'")[0][0] == 0
                   and eng.sql("select count(*) from outbox where id <= ?",
                               (max([r[0] for r in snap["outbox"]] or [0]),))[0][0] == len(snap["outbox"]),
                   15, "the calls pending at the fault to be delivered")
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "restarted daemon exit %d after SIGTERM" % rc)
        after = dump(db)
        check(after["alert"] == snap["alert"], "alert definitions changed across the fault")
        old = {r[0]: r for r in after["outbox"]}
        for row in snap["outbox"]:
            check(row[0] in old, "outbox row %s lost" % (row,))
        ids = {r[0] for r in after["transition"]}
        for row in snap["transition"]:
            check(row[0] in ids, "transition row %s lost" % (row,))
        check(after["transition"][:len(snap["transition"])] == snap["transition"],
              "the history before the fault changed")
        steady = {r[0]: r for r in after["alert_state"]}
        for row in snap["alert_state"]:
            check(row[0] in steady, "alert_state row %s lost" % (row,))
        check(integrity(db) == [("ok",)], "integrity_check after the restart: %s" % integrity(db))
        # Each steady alert was notified once; a call that was in flight at
        # the fault may have gone twice (at most one per delivery worker).
        recs = emu.records()
        per = {}
        for r in recs:
            if r["alert"].startswith("steady-"):
                per[r["alert"]] = per.get(r["alert"], 0) + 1
        extra = sum(n - 1 for n in per.values())
        check(len(per) == 20 and extra <= 2, "notifies of the steady alerts: %s" % per)
        log("  restart after freeing space: %d outbox rows and %d transitions kept, integrity ok"
            % (len(snap["outbox"]), len(snap["transition"])))
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
            eng.proc.wait()
        emu.stop()
        mounts.undo(d)


def main():
    t0 = time.time()
    log("db faults: seed=%d (rerun with DB_FAULTS_SEED=%d)" % (SEED, SEED))
    wd = Workdir("db-faults")
    mounts = Mount()
    # A timeout's SIGTERM still unmounts (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("killed by SIGTERM"))
    emu = Emulator(wd, args=["--count", "400"])
    try:
        log("corrupt:")
        check_corrupt(wd, emu)
        log("newer version:")
        check_newer(wd, emu)
        log("second engine:")
        check_second_engine(wd, emu)
        log("read-only:")
        check_read_only(wd, emu, mounts)
        log("disk full:")
        check_disk_full(wd, mounts)
    finally:
        emu.stop()
        mounts.undo_all()
    wd.cleanup()
    if skips:
        log("db faults: the other cases ok in %.1fs; SKIPPED, %d cases could not run here:\n  %s"
            % (time.time() - t0, len(skips), "\n  ".join(skips)))
        sys.exit(SKIPPED)
    log("db faults: ok in %.1fs" % (time.time() - t0))


if __name__ == "__main__":
    main()
