"""The command line: bad options exit 64 with one line naming the option;
--help and --version exit 0; databases that cannot be used exit 74 (a
missing directory, a file that is not a database, a schema newer than the
binary), whose content is left alone."""

import os
import sqlite3
import subprocess

from harness import ENGINE, Workdir, check, log

# Nothing listens here (port 1 is privileged and unused): no run may reach a server.
SERVER = "http://127.0.0.1:1"


def run(args, timeout=20):
    p = subprocess.run([ENGINE] + args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def main():
    wd = Workdir("cli")
    db = wd.file("cli.db")
    base = ["--server", SERVER, "--db", db, "--once"]

    for args, named in [(["-c", "0"], "-c"), (["-r", "abc"], "-r"), (["-l", "loud"], "-l"),
                        (["--bogus"], "--bogus"), (["--timeout", "x"], "--timeout"),
                        (["--concurrency", "-3"], "--concurrency"), (["--once", "extra"], "extra"),
                        (["--timeout"], "--timeout"), (["--server", "ftp://x"], "--server")]:
        rc, out, err = run(base + args)
        lines = err.splitlines()
        log("%-22s exit %d: %s" % (" ".join(args), rc, err.strip()))
        check(rc == 64, "%s: exit status %d, expected 64" % (args, rc))
        check(len(lines) == 1, "%s: %d lines on stderr: %r" % (args, len(lines), err))
        check(named in lines[0], "%s: the message does not name %s: %r" % (args, named, err))
        check(out == "", "%s: stdout %r" % (args, out))
    check(not os.path.exists(db), "a bad command line created the database")

    rc, out, err = run(["--help"])
    check(rc == 0 and out.startswith("usage: alert-exec") and "--once" in out,
          "--help: exit %d, stdout %r" % (rc, out))
    rc, out, err = run(["--version"])
    check(rc == 0 and out.startswith("alert-exec ") and len(out.splitlines()) == 1,
          "--version: exit %d, stdout %r" % (rc, out))
    log("--version:", out.strip())

    # Databases that cannot be used.
    missing = wd.file("no/such/dir/x.db")
    rc, out, err = run(["--server", SERVER, "--db", missing, "--once"])
    log("missing directory: exit %d: %s" % (rc, err.strip()))
    check(rc == 74, "--db in a missing directory: exit %d, expected 74" % rc)
    check("no/such/dir" in err, "the message does not name the directory: %r" % err)

    garbage = wd.file("garbage.db")
    content = b"this is not a database, just some text that is long enough\n" * 100
    with open(garbage, "wb") as f:
        f.write(content)
    rc, out, err = run(["--server", SERVER, "--db", garbage, "--once"])
    log("garbage file: exit %d: %s" % (rc, err.strip()))
    check(rc == 74, "--db on a garbage file: exit %d, expected 74" % rc)
    check("garbage.db" in err, "the message does not name the file: %r" % err)
    with open(garbage, "rb") as f:
        check(f.read() == content, "the garbage file was modified")

    newer = wd.file("newer.db")
    con = sqlite3.connect(newer)
    con.execute("create table mine (x)")
    con.execute("insert into mine values (42)")
    con.execute("pragma user_version = 99")
    con.commit()
    con.close()
    for mode in (["--once"], []):  # the daemon refuses it too, at once
        rc, out, err = run(["--server", SERVER, "--db", newer] + mode)
        log("user_version 99 %s: exit %d: %s" % (mode, rc, err.strip()))
        check(rc == 74, "--db with user_version 99: exit %d, expected 74" % rc)
        check("newer" in err, "the message does not say newer: %r" % err)
    con = sqlite3.connect(newer)
    try:
        kept = (con.execute("pragma user_version").fetchone()[0],
                con.execute("select x from mine").fetchall(),
                con.execute("select count(*) from sqlite_master").fetchone()[0])
    finally:
        con.close()
    check(kept == (99, [(42,)], 1), "the newer database was modified: %s" % (kept,))
    log("cli: ok")
    wd.cleanup()


if __name__ == "__main__":
    main()
