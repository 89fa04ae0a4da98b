"""The daemon on PostgreSQL databases it cannot use: a server that is not
there, a wrong password, a database that does not exist and a schema newer
than the binary each exit 74 with one CRITICAL line that says which, and
never shows the URI's password; a good URI with a password in it starts,
with the password hidden in its log. Runs on the scratch server of ctest's
pg fixture (ALERT_EXEC_PG_URI_FILE); registered as integration_pg_errors."""

import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import (ENGINE, Emulator, Engine, Workdir, _pg_admin_uri, alert, check, log,  # noqa: E402
                     pg_query)

# Nothing listens here: no run below gets as far as the server.
SERVER = "http://127.0.0.1:1"


def run(db):
    p = subprocess.run([ENGINE, "--server", SERVER, "--db", db, "--once"], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stderr


def expect_74(what, db, says, secret=None):
    rc, err = run(db)
    lines = err.splitlines()
    log("%s: exit %d: %s" % (what, rc, err.strip()))
    check(rc == 74, "%s: exit status %d, expected 74" % (what, rc))
    check(len(lines) == 1 and " CRITICAL " in lines[0],
          "%s: not one CRITICAL line: %r" % (what, err))
    check(says in lines[0], "%s: the line does not say %r: %r" % (what, says, err))
    if secret:
        check(secret not in err, "%s: the password is in the message: %r" % (what, err))


def main():
    wd = Workdir("pg-errors")
    admin = _pg_admin_uri()
    host = admin.split("?", 1)[1]
    mine = "pgerr_%d" % os.getpid()
    pg_query(admin, "CREATE DATABASE %s OWNER alert_exec_pw" % mine)
    emu = None
    try:
        expect_74("no server", "postgresql:///postgres?host=%s/none" % wd.path, "No such file")
        expect_74("wrong password", "postgresql://alert_exec_pw:wr0ng@/%s?%s" % (mine, host),
                  "password authentication failed", "wr0ng")
        expect_74("no database", "postgresql:///no_such_%s?%s" % (mine, host), "does not exist")

        # The role with its right password: the daemon starts and migrates,
        # and its log shows the URI without the password.
        good = "postgresql://alert_exec_pw:right@/%s?%s" % (mine, host)
        emu = Emulator(wd, alerts=[alert("a")])
        eng = Engine(wd, emu.url, db=good).start().wait_started()
        rc, _ = eng.kill(signal.SIGTERM)
        text = eng.log_text()
        check(rc == 0, "daemon exit status %d after SIGTERM" % rc)
        check('db="postgresql://***@/%s?' % mine in text,
              "the start line hides no password:\n" + text)
        check("right" not in text, "the password is in the log:\n" + text)

        uri = "postgresql:///%s?%s" % (mine, host)
        pg_query(uri, "INSERT INTO schema_version (version, name) VALUES (9999, 'x')")
        expect_74("newer schema", good, "schema version 9999 is newer than this binary knows",
                  "right")
    finally:
        if emu:
            emu.stop()
        pg_query(admin, "DROP DATABASE %s WITH (FORCE)" % mine)
    log("pg errors: ok")
    wd.cleanup()


if __name__ == "__main__":
    main()
