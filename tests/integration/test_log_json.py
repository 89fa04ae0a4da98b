"""--log-format json: every stderr line is one JSON object (json.loads)
with time, level, msg and the same key=value fields as the logfmt run of
the same scenario (test_log_format.py's hostile alert name and query:
quotes, backslashes, a newline), the values unescaped to what the server
sent. Values are JSON strings, numbers included."""

import json
import re
import time

from harness import Engine, Workdir, alert, check, log, wait_until
from scripted_server import ScriptedServer, ok
from test_log_format import HEAD, NAME, QUERY, pairs, unquote


def run(wd, srv, fmt):
    eng = Engine(wd, srv.url, args=["--log-format", fmt], name="engine-" + fmt)
    eng.start()
    wait_until(lambda: '"msg":"started"' in eng.log_text() or " started " in eng.log_text()
               or eng.proc.poll() is not None, 10, "the daemon to start")
    time.sleep(2.5)
    rc, _ = eng.kill(15)
    check(rc == 0, "%s: exit status %d" % (fmt, rc))
    return eng.log_text()


def signature(msg, fields):
    return (msg, tuple(sorted(fields)))


def logfmt_signatures(text):
    out = set()
    for line in text.splitlines():
        m = HEAD.match(line)
        check(m, "logfmt: no time and level: %r" % line)
        kv = pairs(line)
        rest = line[m.end():]
        first = re.search(r'[A-Za-z_][A-Za-z0-9_]*=', rest)
        out.add(signature(rest[:first.start()].strip() if kv else rest.strip(), kv))
    return out


def main():
    wd = Workdir("log-json")
    srv = ScriptedServer()
    try:
        srv.on("alerts", lambda hit, n: ok([alert(NAME, query=QUERY, interval=1)]))
        srv.on("query", lambda hit, n: (500, {}, b'{"error": "no \\"such\\" target"}'))
        text = run(wd, srv, "json")
        lines = text.splitlines()
        objs, failed = [], []
        for line in lines:
            try:
                o = json.loads(line)
            except ValueError as e:
                raise AssertionError("not JSON (%s): %r" % (e, line))
            check(isinstance(o, dict), "not an object: %r" % line)
            check(list(o)[:3] == ["time", "level", "msg"], "head fields: %r" % list(o))
            check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", o["time"]),
                  "time %r" % o["time"])
            check(o["level"] in ("CRITICAL", "ERROR", "WARN", "INFO", "DEBUG"),
                  "level %r" % o["level"])
            check(all(isinstance(v, str) for v in o.values()), "a value is not a string: %r" % o)
            objs.append(o)
            if o["msg"] == "query failed":
                failed.append(o)
        check(failed, "no query failed line:\n" + text)
        for o in failed:
            check(o.get("alert") == NAME, "alert=%r, expected %r" % (o.get("alert"), NAME))
            m = re.match(r'query ("(?:[^"\\]|\\.)*"): HTTP 500', o.get("error", ""))
            check(m and unquote(m.group(1)) == QUERY, "the error does not name the query: %r"
                  % o.get("error"))
        js = {signature(o["msg"], [k for k in o if k not in ("time", "level", "msg")])
              for o in objs}
        lf = logfmt_signatures(run(wd, srv, "logfmt"))
        check(js == lf, "fields differ:\n json only: %r\n logfmt only: %r" % (js - lf, lf - js))
        log("ok: %d JSON lines, %d kinds of line with the logfmt run's fields; %d failed "
            "queries name %r" % (len(objs), len(js), len(failed), NAME))
    finally:
        srv.stop()
        wd.cleanup()


if __name__ == "__main__":
    main()
