"""Files and secrets of the real daemon:

- with umask 022, the database, its -wal and -shm files and the lock file
  are created readable and writable by their owner only (0600);
- a symbolic link planted as PATH.lock (say, in a shared directory) is
  refused with exit 74 and one CRITICAL line, and the file it points to
  is left as it was;
- the password of a --server URL (http://user:pass@host) is in no line of
  the log, which shows http://***@host:port instead."""

import os
import signal
import stat
import subprocess

from harness import ENGINE, Emulator, Engine, Workdir, check, log, wait_until

PASSWORD = "s3cr3t-pw"


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def check_modes_and_password(wd, emu):
    url = "http://alerts:%s@127.0.0.1:%d" % (PASSWORD, emu.port)
    db = wd.file("private.db")
    eng = Engine(wd, url, db=db, name="private").start()
    files = [db, db + "-wal", db + "-shm", db + ".lock"]
    try:
        eng.wait_started()
        # The definitions stored and the first evaluations: every file exists.
        wait_until(lambda: all(os.path.exists(p) for p in files) and
                   eng.sql("select count(*) from alert_status where last_eval is not null")[0][0] > 0,
                   30, "the database, its side files and a first evaluation")
        # -wal and -shm go away at a clean stop: read the modes now.
        modes = {p: mode(p) for p in files}
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit %d after SIGTERM" % rc)
    finally:
        if eng.proc.poll() is None:
            eng.proc.kill()
    text = eng.log_text()
    check(PASSWORD not in text, "the password is in the log:\n%s" %
          "\n".join(l for l in text.splitlines() if PASSWORD in l))
    shown = "server=http://***@127.0.0.1:%d" % emu.port
    check(shown in text, "the start line does not show %s:\n%s" % (shown, text[:2000]))
    check(emu.proc.poll() is None, "the emulator died")
    log("log shows %s, never the password" % shown)
    log("modes under umask 022:", {os.path.basename(p): oct(m) for p, m in modes.items()})
    for p, m in modes.items():
        check(m == 0o600, "%s has mode %o, expected 600" % (p, m))

    # An existing database keeps the mode its owner gave it.
    os.chmod(db, 0o640)
    rc, _, err = Engine(wd, url, db=db, name="private-again").once()
    check(rc in (0, 75), "second run: exit %d: %s" % (rc, err[-2000:]))
    check(mode(db) == 0o640, "the database's mode became %o" % mode(db))
    check(PASSWORD not in err, "the password is in the log of --once")


def check_planted_lock_link(wd, emu):
    db = wd.file("shared.db")
    target = wd.file("precious.txt")
    content = "someone else's file\n" * 10
    with open(target, "w") as f:
        f.write(content)
    os.symlink(target, db + ".lock")
    p = subprocess.run([ENGINE, "--server", emu.url, "--db", db, "--once"],
                       capture_output=True, text=True, timeout=30)
    lines = p.stderr.splitlines()
    log("planted lock link: exit %d: %s" % (p.returncode, p.stderr.strip()))
    check(p.returncode == 74, "exit %d, expected 74" % p.returncode)
    check(len(lines) == 1 and " CRITICAL " in lines[0] and "symbolic link" in lines[0],
          "stderr %r" % p.stderr)
    with open(target) as f:
        check(f.read() == content, "the link's target was changed")
    check(os.path.islink(db + ".lock"), "the link was replaced")
    check(not os.path.exists(db), "the database was created")


def main():
    os.umask(0o022)
    wd = Workdir("files")
    emu = Emulator(wd, args=["--count", "3"], record=False)
    try:
        check_modes_and_password(wd, emu)
        check_planted_lock_link(wd, emu)
    finally:
        emu.stop()
    wd.cleanup()
    log("ok")


if __name__ == "__main__":
    main()
