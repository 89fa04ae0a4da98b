"""`alert-exec status` beside a running daemon (which holds the
database's lock): the aligned table and --json list every alert, firing
first, with its state and pending calls, and one line of outbox totals.
A missing database exits 74 and is not created; a bad option exits 64."""

import json
import os
import re
import subprocess

from harness import ENGINE, ON_PG, Emulator, Engine, Workdir, alert, check, log, wait_until

ALERTS = [alert("zeta-crit"), alert("alpha-warn"), alert("beta-pass"), alert("gamma-crit")]
TIMELINE = {"q-zeta-crit": [[0, 500]], "q-gamma-crit": [[0, 300]], "q-alpha-warn": [[0, 150]],
            "q-beta-pass": [[0, 1]]}
ORDER = [("gamma-crit", "CRITICAL"), ("zeta-crit", "CRITICAL"), ("alpha-warn", "WARN"),
         ("beta-pass", "PASS")]


def run(args):
    p = subprocess.run([ENGINE, "status"] + args, capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout, p.stderr


def main():
    wd = Workdir("status-cmd")
    # Notifies are refused: the calls stay pending, counted in the totals.
    emu = Emulator(wd, alerts=ALERTS, timeline=TIMELINE, args=["--fail-rate-notify", "1"])
    eng = Engine(wd, emu.url).start().wait_started()
    wait_until(lambda: sorted(eng.sql("select name, state from alert_status")) == sorted(ORDER)
               and eng.sql("select count(*) from outbox where status = 'pending' "
                           "and attempts > 0")[0][0] == 3,
               20, "every alert in its state and three refused notifies")

    rc, out, err = run(["--db", eng.db])
    log(out)
    check(rc == 0 and err == "", "status: exit %d, stderr %r" % (rc, err))
    lines = out.splitlines()
    check(lines[0].split()[:2] == ["NAME", "STATE"], "the header: %r" % lines[0])
    rows = [l.split() for l in lines[1:-1]]
    check([(r[0], r[1]) for r in rows] == ORDER, "the rows: %s" % rows)
    # Aligned: every column starts where its header does.
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    for l in lines[1:-1]:
        for s in starts[:7]:
            check(l[s] != " " and (s == 0 or l[s - 1] == " "), "not aligned: %r" % l)
    check(re.fullmatch(r"outbox: pending=3 dead=0 oldest_pending_age=\d+\.\ds", lines[-1]),
          "the totals line: %r" % lines[-1])
    pending = {r[0]: int(r[5]) for r in rows}
    check(pending == {"gamma-crit": 1, "zeta-crit": 1, "alpha-warn": 1, "beta-pass": 0},
          "pending calls: %s" % pending)

    rc, out, err = run(["--db", eng.db, "--json"])
    check(rc == 0, "status --json: exit %d, %s" % (rc, err))
    arr = json.loads(out)
    check([(a["name"], a["state"]) for a in arr] == ORDER, "--json order: %s" % arr)
    check(all(a["last_eval"] and a["last_value"] is not None for a in arr), "--json: %s" % arr)
    check(arr[0]["pending_calls"] == 1 and arr[0]["retired"] is False, "--json: %s" % arr[0])
    check(re.fullmatch(r"outbox: pending=3 dead=0 oldest_pending_age=\d+\.\ds\n", err),
          "--json's totals line on stderr: %r" % err)

    if ON_PG:
        # A database the server does not have: no file to look for, and
        # the URI names it.
        missing = re.sub(r"(postgresql:///)([^?]+)", r"\1\2_missing", eng.db)
    else:
        missing = wd.file("missing.db")
    rc, out, err = run(["--db", missing])
    log("missing database: exit %d: %s" % (rc, err.strip()))
    check(rc == 74 and out == "" and len(err.splitlines()) == 1 and
          (ON_PG and "_missing" in err or missing in err),
          "missing database: exit %d, %r" % (rc, err))
    check(ON_PG or not os.path.exists(missing), "status created the missing database")
    rc, out, err = run(["--bogus"])
    check(rc == 64 and len(err.splitlines()) == 1, "bad option: exit %d, %r" % (rc, err))

    rc, _ = eng.kill(15)
    emu.stop()
    check(rc == 0, "the daemon exited %d" % rc)
    # And with no daemon running.
    rc, out, err = run(["--db", eng.db])
    check(rc == 0 and out.splitlines()[1].startswith("gamma-crit"), "status after the stop: %r" % out)
    wd.cleanup()
    log("ok")


if __name__ == "__main__":
    main()
