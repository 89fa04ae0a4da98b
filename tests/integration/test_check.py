"""`alert-exec check`: fetches /alerts with the engine's client, validates
every entry with the engine's parser, prints one line per problem naming
the entry's index and name, then a summary; exits 0 when all are valid,
65 when some are not, 69 when the server cannot be reached or does not
answer with a JSON array. The problems named are the very entries a
--once run of the engine skips (same parser, same indexes)."""

import re
import subprocess

from harness import ENGINE, Engine, Workdir, alert, check, log
from scripted_server import ScriptedServer, ok

HOSTILE = 'bad "name" C:\\'


def bad_body():
    """Entry by entry: what check must say about it (index -> fragments)."""
    no_query = alert("no-query")
    del no_query["query"]
    zero = alert("zero-interval", interval=0)
    hostile = alert(HOSTILE)
    hostile["warn"] = {"value": "high", "message": "w"}
    clamped = alert("clamped", sustain=2 ** 31 - 1)
    entries = [alert("good-1"), zero, 42, no_query, alert("good-1"), hostile, clamped]
    expect = {
        1: ("invalid", "(zero-interval)", "intervalSecs"),
        2: ("invalid", "entry 2:", "not an object"),
        3: ("invalid", "(no-query)", "query"),
        4: ("invalid", "(good-1)", "duplicate"),
        5: ("invalid", '("bad \\"name\\" C:\\\\")', "warn"),
        6: ("warning", "(clamped)", "sustainSecs"),
    }
    return entries, expect


def run_check(args, timeout=30):
    p = subprocess.run([ENGINE, "check"] + args, capture_output=True, text=True,
                       timeout=timeout)
    log("check %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p.returncode, p.stdout, p.stderr


def summary(out):
    last = out.splitlines()[-1]
    check(last.startswith("entries="), "no summary line last: %r" % out)
    return {k: v for k, v in (f.split("=", 1) for f in last.split())}


def check_good(srv):
    srv.on("alerts", lambda hit, n: ok([alert("a1"), alert("a2", sustain=3)]))
    rc, out, err = run_check(["--server", srv.url])
    check(rc == 0, "all valid: exit %d, expected 0" % rc)
    s = summary(out)
    check((s["entries"], s["valid"], s["invalid"]) == ("2", "2", "0"), "summary %r" % s)
    check(len(out.splitlines()) == 1, "problems printed for a valid body: %r" % out)


def check_bad(srv, wd):
    entries, expect = bad_body()
    srv.on("alerts", lambda hit, n: ok(entries))
    rc, out, err = run_check(["--server", srv.url])
    check(rc == 65, "invalid entries: exit %d, expected 65" % rc)
    lines = out.splitlines()[:-1]
    check(len(lines) == len(expect), "%d problem lines, expected %d: %r"
          % (len(lines), len(expect), lines))
    for index, (kind, who, field) in expect.items():
        mine = [l for l in lines if l.startswith("entry %d " % index) or
                l.startswith("entry %d:" % index)]
        check(len(mine) == 1, "entry %d: %d lines: %r" % (index, len(mine), lines))
        check(kind + ":" in mine[0] and who in mine[0] and field in mine[0],
              "entry %d: %r does not say %s, %s, %s" % (index, mine[0], kind, who, field))
    s = summary(out)
    check((s["entries"], s["valid"], s["invalid"], s["clamped"]) == ("7", "2", "5", "1"),
          "summary %r" % s)
    # The engine, on the same body, skips exactly the entries check calls invalid.
    eng = Engine(wd, srv.url)
    _, _, elog = eng.once()
    skipped = sorted(int(m) for m in re.findall(r"alerts: skipping entry (\d+)", elog))
    invalid = sorted(i for i, (kind, _, _) in expect.items() if kind == "invalid")
    check(skipped == invalid, "the engine skipped entries %r, check named %r" % (skipped, invalid))


def check_unavailable(srv):
    for name, answer in [("HTTP 500", (500, {}, b"oops")),
                         ("not an array", ok({"alerts": []})),
                         ("not JSON", (200, {}, b"<html>"))]:
        srv.on("alerts", lambda hit, n, a=answer: a)
        rc, out, err = run_check(["--server", srv.url])
        check(rc == 69, "%s: exit %d, expected 69" % (name, rc))
        check(out == "" and "alerts" in err, "%s: stdout %r stderr %r" % (name, out, err))
    rc, out, err = run_check(["--server", "http://127.0.0.1:1"])
    check(rc == 69, "unreachable: exit %d, expected 69" % rc)
    check("127.0.0.1:1" in err, "unreachable: stderr does not name the server: %r" % err)


def main():
    wd = Workdir("check")
    srv = ScriptedServer()
    try:
        check_good(srv)
        check_bad(srv, wd)
        check_unavailable(srv)
        rc, out, err = run_check(["--bogus"])
        check(rc == 64 and "--bogus" in err, "bad option: exit %d, %r" % (rc, err))
        rc, out, err = run_check(["--help"])
        check(rc == 0 and out.startswith("usage: alert-exec check"), "--help: %d %r" % (rc, out))
        log("ok: check exits 0, 65 naming every invalid entry as the engine skips it, 69, 64")
    finally:
        srv.stop()
        wd.cleanup()


if __name__ == "__main__":
    main()
