"""Every log line stays parseable as `TIME LEVEL event... key=value...`
when the values hold quotes, backslashes and newlines: the alert's name
and query come from the server, and the error of a failing query repeats
the query. Each value with such characters is written quoted and
escaped, so the line splits into the same pairs a reader expects. The
start line's database and server are such values too: a path with a
space and an '=', a PostgreSQL URI with '?host=...'."""

import re
import time

from harness import ON_PG, Engine, Workdir, alert, check, log
from scripted_server import ScriptedServer, ok

NAME = 'disk "C:\\" full'
QUERY = 'cpu "load"\\x\nsecond line'
PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"=]+)')
HEAD = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (CRITICAL|ERROR|WARN|INFO|DEBUG) ')


def unquote(v):
    if not v.startswith('"'):
        return v
    return re.sub(r'\\(u00[0-9a-fA-F]{2}|x[0-9a-fA-F]{2}|.)',
                  lambda m: {'n': '\n', 't': '\t', 'r': '\r'}.get(m.group(1), m.group(1))
                  if len(m.group(1)) == 1 else chr(int(m.group(1)[1:], 16)), v[1:-1])


def pairs(line):
    """The key=value pairs of a line, or raises naming what does not parse."""
    m = HEAD.match(line)
    check(m, "no time and level: %r" % line)
    rest = line[m.end():]
    first = PAIR.search(rest)
    words = rest[:first.start()] if first else rest
    check('"' not in words and "=" not in words, "free text holds a quote or '=': %r" % line)
    out = {}
    pos = first.start() if first else len(rest)
    while pos < len(rest):
        p = PAIR.match(rest, pos)
        check(p, "not key=value at %r in %r" % (rest[pos:], line))
        out[p.group(1)] = unquote(p.group(2))
        pos = p.end()
        if pos < len(rest):
            check(rest[pos] == " ", "no space after a pair in %r" % line)
            pos += 1
    return out


def main():
    wd = Workdir("log-format")
    srv = ScriptedServer()
    eng = None
    try:
        srv.on("alerts", lambda hit, n: ok([alert(NAME, query=QUERY, interval=1)]))
        srv.on("query", lambda hit, n: (500, {}, b'{"error": "no \\"such\\" target"}'))
        db = wd.database("state") if ON_PG else wd.file("state dir=1.db")
        eng = Engine(wd, srv.url, db=db).start().wait_started()
        time.sleep(2.5)
        rc, _ = eng.kill(15)
        check(rc == 0, "exit status %d" % rc)
        lines = eng.log_text().splitlines()
        failed = []
        for line in lines:
            kv = pairs(line)
            if " query failed " in line:
                failed.append(kv)
        check(failed, "no query failed line:\n" + "\n".join(lines))
        started = [pairs(line) for line in lines if " started " in line]
        check(len(started) == 1 and started[0].get("db") == db
              and started[0].get("server") == srv.url,
              "the start line does not name db=%r server=%r: %r" % (db, srv.url, started))
        for kv in failed:
            check(kv.get("alert") == NAME, "alert=%r, expected %r" % (kv.get("alert"), NAME))
            # the client's message names the target as a log value itself
            m = re.match(r'query ("(?:[^"\\]|\\.)*"): HTTP 500', kv.get("error", ""))
            check(m and unquote(m.group(1)) == QUERY,
                  "the error does not name the query: %r" % kv.get("error"))
        log("ok: %d lines, all key=value; %d failed queries name %r" % (len(lines), len(failed),
                                                                       NAME))
    finally:
        if eng and eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        srv.stop()
        wd.cleanup()


if __name__ == "__main__":
    main()
