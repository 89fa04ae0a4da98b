"""Bad input from the alerts server: the daemon does not crash, skips each
bad /alerts entry with a warning that names it and the field, uses the good
ones, keeps its stored definitions when a whole /alerts body is bad, and
counts a bad /query answer as a failed query (state kept, no call sent).

The emulator only serves valid JSON arrays and numbers, so this test runs
its own tiny scripted HTTP server."""

import http.server
import json
import os
import re
import signal
import threading
import time
import urllib.parse

from harness import Engine, Workdir, alert, check, log, wait_until


class FakeServer:
    """Serves scripted bodies: /alerts one body, /query one body per target
    (a value, or raw bytes); accepts /notify and /resolve and records them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.alerts_body = b"[]"
        self.alerts_type = "application/json"
        self.queries = {}           # target -> (body bytes, content type)
        self.records = []           # (time, kind, decoded body)
        self.hits = {"alerts": 0, "query": 0}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, code, body=b"", ctype="application/json"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/alerts":
                    with server.lock:
                        server.hits["alerts"] += 1
                        body, ctype = server.alerts_body, server.alerts_type
                    self.answer(200, body, ctype)
                elif url.path == "/query":
                    target = urllib.parse.parse_qs(url.query).get("target", [""])[0]
                    with server.lock:
                        server.hits["query"] += 1
                        body, ctype = server.queries.get(target, (b'{"value": 0}', "application/json"))
                    self.answer(200, body, ctype)
                else:
                    self.answer(404, b"not found", "text/plain")

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                kind = self.path.strip("/")
                if kind not in ("notify", "resolve"):
                    self.answer(404, b"not found", "text/plain")
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"raw": raw.decode("latin-1")}
                with server.lock:
                    server.records.append((time.time(), kind, body))
                self.answer(200, b"{}")

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that hangs up early (a body over its cap)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def set_alerts(self, body, ctype="application/json"):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        with self.lock:
            self.alerts_body, self.alerts_type = body, ctype

    def set_query(self, target, body, ctype="application/json"):
        if isinstance(body, (int, float)):
            body = json.dumps({"value": body}).encode()
        with self.lock:
            self.queries[target] = (body, ctype)

    def calls(self, name=None):
        with self.lock:
            return [(k, b.get("alertName"), b.get("message", "")) for _, k, b in self.records
                    if name is None or b.get("alertName") == name]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def good(name, **kw):
    return alert(name, repeat=3600, **kw)


def without(d, key):
    return {k: v for k, v in d.items() if k != key}


def with_level(d, key, **kw):
    d = dict(d)
    d[key] = dict(d[key], **kw)
    return d


HUGE = "x" * (100 * 1024)

# (entry, words the warning must carry: the field it names). None: good.
ENTRIES = [
    (good("good-1"), None),
    (without(good("nameless"), "name"), "name is missing"),
    (dict(good("n"), name=123), "name is not a string"),
    (dict(good("n"), name=""), "name is empty"),
    (dict(good("n"), name=HUGE), "name is longer than"),
    (dict(good("n"), name="bad\nname"), "name has a control character"),
    (dict(good("n"), name=None), "name is not a string"),
    (without(good("no-query"), "query"), "query is missing"),
    (dict(good("empty-query"), query=""), "query is empty"),
    (dict(good("huge-query"), query=HUGE), "query is longer than"),
    (dict(good("query-number"), query=7), "query is not a string"),
    (without(good("no-interval"), "intervalSecs"), "intervalSecs is missing"),
    (dict(good("interval-string"), intervalSecs="15"), "intervalSecs is not a number"),
    (dict(good("interval-zero"), intervalSecs=0), "intervalSecs is not a positive integer"),
    (dict(good("interval-negative"), intervalSecs=-5), "intervalSecs is not a positive integer"),
    (dict(good("interval-fraction"), intervalSecs=1.5), "intervalSecs is not an integer"),
    (dict(good("interval-huge"), intervalSecs=1e30), "intervalSecs is over"),
    (dict(good("interval-bool"), intervalSecs=True), "intervalSecs is not a number"),
    (dict(good("repeat-string"), repeatIntervalSecs="x"), "repeatIntervalSecs is not a number"),
    (dict(good("sustain-negative"), sustainSecs=-1), "sustainSecs is negative"),
    (dict(good("sustain-list"), sustainSecs=[1]), "sustainSecs is not a number"),
    (without(good("no-warn"), "warn"), "warn is missing"),
    (dict(good("warn-number"), warn=100), "warn is not an object"),
    (with_level(good("warn-value-string"), "warn", value="100"), "warn.value is not a number"),
    (with_level(good("warn-value-null"), "warn", value=None), "warn.value is not a number"),
    (without(good("no-critical"), "critical"), "critical is missing"),
    (dict(good("critical-null"), critical=None), "critical is not an object"),
    (with_level(good("crit-message-number"), "critical", message=5), "critical.message is not a string"),
    (with_level(good("huge-message"), "critical", message=HUGE), "critical.message is longer than"),
    (dict(good("good-1"), query="other"), "name is a duplicate"),
    ("alert-as-string", "entry is not an object"),
    (None, "entry is not an object"),
    ([good("in-a-list")], "entry is not an object"),
    (42, "entry is not an object"),
    (good("good-2", warn=-1, crit=10), None),  # 0 is a value: WARN
]
GOOD = ["good-1", "good-2"]


def skip_lines(text):
    """{index: warning line} of the 'skipping entry' warnings."""
    out = {}
    for line in text.splitlines():
        m = re.search(r" WARN alerts: skipping entry (\d+)\b", line)
        if m:
            out.setdefault(int(m.group(1)), []).append(line)
    return out


def alert_rows(eng):
    return eng.sql("select id, name, query, interval_ms, repeat_ms, sustain_ms, warn_value, "
                   "warn_message, crit_value, crit_message, created, updated, retired "
                   "from alert order by id")


def count_in(text, needle):
    return text.count(needle)


def check_entries(srv, wd):
    """A fresh daemon on a mixed /alerts array: each bad entry skipped with one
    warning naming its index and field; the good ones stored and evaluated."""
    srv.set_alerts([e for e, _ in ENTRIES])
    srv.set_query("q-good-1", 150)   # WARN
    srv.set_query("q-good-2", 0)     # WARN (warn is -1)
    eng = Engine(wd, srv.url, db=wd.database("entries"), name="entries",
                 args=["--refresh", "1h"]).start()
    try:
        wait_until(lambda: {n for _, n, _ in srv.calls()} >= set(GOOD), 20,
                   "notifies of the good alerts")
        check(eng.proc.poll() is None, "daemon died: %s" % eng.log_text()[-2000:])
        # One fetch (at start, --refresh 1h): one warning per bad entry
        # below means one per fetch.
        with srv.lock:
            fetches = srv.hits["alerts"]
        check(fetches == 1, "/alerts fetched %d times, expected once" % fetches)
        names = sorted(n for (n,) in eng.sql("select name from alert"))
        check(names == GOOD, "stored alerts %s, expected %s" % (names, GOOD))
        text = eng.log_text()
        lines = skip_lines(text)
        for i, (entry, why) in enumerate(ENTRIES):
            if why is None:
                check(i not in lines, "good entry %d was skipped: %s" % (i, lines.get(i)))
                continue
            got = lines.get(i, [])
            # One fetch at start: exactly one warning per bad entry.
            check(len(got) == 1, "entry %d (%s): %d warnings: %s" % (i, why, len(got), got))
            check(why in got[0], "entry %d: warning does not say %r: %s" % (i, why, got[0][:300]))
            check(len(got[0]) < 600, "entry %d: warning line is %d bytes" % (i, len(got[0])))
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) \
                    and entry["name"] and len(entry["name"]) < 100 and "\n" not in entry["name"]:
                check(entry["name"] in got[0], "entry %d: warning does not name %s: %s"
                      % (i, entry["name"], got[0]))
        check(max(len(l) for l in text.splitlines()) < 4200, "a log line is unbounded")
        calls = srv.calls()
        check(sorted(calls) == [("notify", "good-1", "warning"), ("notify", "good-2", "warning")],
              "calls: %s" % calls)
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "daemon exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc.poll() is None:
            eng.proc.kill()
    log("entries: %d bad entries skipped with their warnings; %s used"
        % (sum(1 for _, w in ENTRIES if w), GOOD))


BAD_BODIES = [
    ("html", b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", "not JSON"),
    ("empty", b"", "application/json", "body is empty"),
    ("object", b'{"alerts": []}', "application/json", "not a JSON array (it is an object)"),
    ("string", b'"[]"', "application/json", "not a JSON array (it is a string)"),
    ("null", b"null", "application/json", "not a JSON array (it is null)"),
    ("number", b"42", "application/json", "not a JSON array (it is a number)"),
    ("truncated", b'[{"name": "good-1", "query": ', "application/json", "not JSON"),
    ("trailing", b"[] []", "application/json", "not JSON"),
    ("binary", bytes(range(256)), "application/octet-stream", "not JSON"),
]


def check_bad_bodies(srv, wd):
    """A daemon with stored definitions: a bad /alerts body (re-fetched on
    SIGHUP) leaves the alert table exactly as it was, sends nothing, and the
    daemon keeps evaluating. --once then uses the stored definitions; a fresh
    database with a bad body exits 69."""
    defs = [good("good-1"), good("good-2", warn=-1, crit=10)]
    srv.set_alerts(defs)
    srv.set_query("q-good-1", 150)
    srv.set_query("q-good-2", 0)
    db = wd.database("bodies")
    eng = Engine(wd, srv.url, db=db, name="bodies", args=["--refresh", "1h"]).start()
    try:
        wait_until(lambda: "definitions loaded alerts=2" in eng.log_text(), 15, "definitions")
        wait_until(lambda: len(eng.sql("select 1 from outbox where status = 'delivered'")) == 2,
                   15, "both notifies delivered")
        before = alert_rows(eng)
        calls_before = srv.calls()
        for label, body, ctype, why in BAD_BODIES:
            srv.set_alerts(body, ctype)
            failed = count_in(eng.log_text(), "fetch alerts failed")
            with srv.lock:
                fetches = srv.hits["alerts"]
            eng.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: count_in(eng.log_text(), "fetch alerts failed") > failed, 15,
                       "the fetch of the %s body to fail" % label)
            # the failure is that of the body the server served: one fetch
            # per SIGHUP (a bad body is not a transport error to retry at once,
            # or is retried with -r: at most 3 requests)
            with srv.lock:
                got = srv.hits["alerts"] - fetches
            check(1 <= got <= 3, "%s body: %d fetches of /alerts for one SIGHUP" % (label, got))
            line = [l for l in eng.log_text().splitlines() if "fetch alerts failed" in l][-1]
            check(why in line, "%s body: %r not in %s" % (label, why, line))
            check(" WARN " in line, "%s body: not a warning: %s" % (label, line))
            check(eng.proc.poll() is None, "daemon died on the %s body" % label)
            after = alert_rows(eng)
            check(after == before, "%s body changed the alert table:\n%s\n%s" % (label, before, after))
        # Still evaluating: last_eval moves on.
        t0 = eng.sql("select max(last_eval) from alert_state")[0][0]
        wait_until(lambda: eng.sql("select min(last_eval) from alert_state")[0][0] > t0, 10,
                   "evaluations after the bad bodies")
        states = dict(eng.sql("select name, state from alert_status"))
        check(states == {"good-1": "WARN", "good-2": "WARN"}, "states: %s" % states)
        check(srv.calls() == calls_before, "calls sent on a bad body: %s" % srv.calls()[len(calls_before):])
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "daemon exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc.poll() is None:
            eng.proc.kill()

    # --once with a bad body: the stored definitions are used.
    srv.set_alerts(b"<html>oops</html>", "text/html")
    rc, out, err = eng.once()
    check(rc in (0, 75), "--once with stored definitions and a bad body: exit %d\n%s" % (rc, err))
    check("fetch alerts failed" in err, "--once did not report the bad body:\n%s" % err)
    check(alert_rows(eng) == before, "--once with a bad body changed the alert table")
    # --once on a fresh database with a bad body, and with only bad entries: 69.
    for label, body in [("html", b"<html>oops</html>"),
                        ("bad entries only", json.dumps([e for e, w in ENTRIES if w and "duplicate" not in w]).encode())]:
        srv.set_alerts(body)
        fresh = Engine(wd, srv.url, db=wd.database("fresh-%d" % len(label)), name="fresh")
        rc, out, err = fresh.once()
        check(rc == 69, "--once on a fresh database, %s: exit %d, expected 69\n%s" % (label, rc, err))
        check("no alert definitions" in err, "--once exit 69 without saying why:\n%s" % err)
    log("bodies: %d bad /alerts bodies left the stored definitions intact; --once ok"
        % len(BAD_BODIES))


BAD_QUERIES = [
    ("html", b"<html><body>Service Unavailable</body></html>", "text/html", "not JSON"),
    ("empty", b"", "application/json", "body is empty"),
    ("string", b'"150"', "application/json", "not a JSON object (it is a string)"),
    ("value-string", b'{"value": "150"}', "application/json", "value is not a number (it is a string)"),
    ("value-null", b'{"value": null}', "application/json", "value is not a number (it is null)"),
    ("no-value", b'{"val": 150}', "application/json", "has no \"value\""),
    ("nan", b'{"value": NaN}', "application/json", "not JSON"),
    ("infinity", b'{"value": Infinity}', "application/json", "not JSON"),
    ("overflow", b'{"value": 1e999}', "application/json", "not finite"),
    ("neg-overflow", b'{"value": -1e999}', "application/json", "not finite"),
    ("array", b"[150]", "application/json", "not a JSON object (it is an array)"),
    ("huge", json.dumps({"value": 150, "pad": HUGE}).encode(), "application/json", "body over"),
]


def check_bad_queries(srv, wd):
    """Alerts that are WARN; then their /query answers go bad: each evaluation
    counts a failure with the reason in last_error, the state stays WARN, no
    resolve (or anything else) is sent, no transition is written."""
    names = ["q-" + label for label, _, _, _ in BAD_QUERIES]
    srv.set_alerts([alert(n, query=n, repeat=3600) for n in names])
    for n in names:
        srv.set_query(n, 150)
    eng = Engine(wd, srv.url, db=wd.database("queries"), name="queries",
                 args=["--refresh", "1h", "-r", "2"]).start()
    try:
        wait_until(lambda: "definitions loaded" in eng.log_text(), 15, "definitions")
        wait_until(lambda: len(eng.sql("select 1 from outbox where status = 'delivered'")) == len(names),
                   20, "every alert WARN and notified")
        calls_before = srv.calls()
        transitions = eng.sql("select count(*) from transition")[0][0]
        with srv.lock:
            queries_before = srv.hits["query"]
        for label, body, ctype, _ in BAD_QUERIES:
            srv.set_query("q-" + label, body, ctype)
        wait_until(lambda: eng.sql("select min(failures) from alert_status")[0][0] >= 3, 20,
                   "three failed evaluations of every alert")
        # the failures are answers the server gave: a request each at least
        with srv.lock:
            served = srv.hits["query"] - queries_before
        check(served >= 3 * len(names), "%d /query requests for %d alerts failing 3 times"
              % (served, len(names)))
        check(eng.proc.poll() is None, "daemon died on bad query answers")
        rows = {r[0]: r[1:] for r in eng.sql(
            "select name, state, failures, last_error, last_value from alert_status")}
        for label, _, _, why in BAD_QUERIES:
            state, failures, last_error, last_value = rows["q-" + label]
            check(state == "WARN", "%s: state %s, expected WARN kept" % (label, state))
            check(last_error and why in last_error, "%s: last_error %r lacks %r" % (label, last_error, why))
            check(last_value == 150, "%s: last_value %r changed" % (label, last_value))
        check(eng.sql("select count(*) from transition")[0][0] == transitions,
              "a failed query wrote a transition")
        time.sleep(0.5)
        check(srv.calls() == calls_before, "calls sent on failed queries: %s"
              % srv.calls()[len(calls_before):])
        text = eng.log_text()
        for n in names:
            check(re.search(r" WARN query failed alert=%s error=" % re.escape(n), text),
                  "no 'query failed' warning for %s" % n)
        # Good answers again: the failures clear and the state is still WARN.
        for n in names:
            srv.set_query(n, 150)
        wait_until(lambda: eng.sql("select max(failures) from alert_status")[0][0] == 0, 15,
                   "failures cleared by good answers")
        states = {s for (s,) in eng.sql("select state from alert_status")}
        check(states == {"WARN"}, "states after recovery: %s" % states)
        check(srv.calls() == calls_before, "calls sent after recovery: %s" % srv.calls()[len(calls_before):])
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "daemon exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc.poll() is None:
            eng.proc.kill()
    log("queries: %d kinds of bad /query answers counted as failures, state kept"
        % len(BAD_QUERIES))


def main():
    t0 = time.time()
    wd = Workdir("bad-input")
    srv = FakeServer()
    try:
        check_entries(srv, wd)
        check_bad_bodies(srv, wd)
        check_bad_queries(srv, wd)
    finally:
        srv.stop()
    log("bad input: ok in %.1fs" % (time.time() - t0))
    wd.cleanup()


if __name__ == "__main__":
    main()
