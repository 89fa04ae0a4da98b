"""Server input that could be misread or cost too much, through the
real daemon:

- a --server URL that starts with http:// but is no URL (http://[::1) is a
  usage error (exit 64) before the database or its lock file exist;
- a raw NUL inside a JSON string of /alerts ("alert-x<NUL>evil") does not
  become alert-x and take the real alert-x's place; one in a /query answer
  ("value<NUL>x") is a failed query, not a value;
- repeatIntervalSecs and sustainSecs of 2^31-1 keep the alert, clamped;
- thousands of bad entries log a bounded number of lines, and a body of
  more than ALERTS_MAX_ENTRIES entries is refused whole, the stored
  definitions kept.

The emulator serves valid JSON only, so a tiny scripted server stands in."""

import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse

from harness import ENGINE, Engine, Workdir, alert, check, log, wait_until

MAX_SECS = 366 * 24 * 3600
MAX_ALERTS = 1000000
MAX_ENTRY_WARNINGS = 50


class ScriptedServer:
    """/alerts answers one body (raw bytes); /query one body per target;
    /notify and /resolve are accepted and counted."""

    def __init__(self):
        self.lock = threading.Lock()
        self.alerts_body = b"[]"
        self.queries = {}
        self.posts = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, code, body):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                with server.lock:
                    if url.path == "/alerts":
                        body = server.alerts_body
                    else:
                        target = urllib.parse.parse_qs(url.query).get("target", [""])[0]
                        body = server.queries.get(target, b'{"value": 0}')
                self.answer(200, body)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server.lock:
                    server.posts.append((self.path, raw))
                self.answer(200, b"{}")

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def set_alerts(self, body):
        with self.lock:
            self.alerts_body = body

    def set_query(self, target, body):
        with self.lock:
            self.queries[target] = body

    def post_count(self):
        with self.lock:
            return len(self.posts)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def entry_bytes(name, **kw):
    return json.dumps(alert(name, **kw)).encode()


def side_files(db):
    return [p for p in (db, db + "-wal", db + "-shm", db + ".lock") if os.path.lexists(p)]


def check_bad_server_urls(wd):
    db = wd.file("url.db")
    for url, says in [("http://[::1", "bad IPv6 address"), ("http://", "no host part"),
                      ("http://host:99999", "port"), ("ftp://x", "not an http://"),
                      ("http://a b", "bad hostname"), ("http://u:secret@[::1", "bad IPv6")]:
        p = subprocess.run([ENGINE, "--server", url, "--db", db, "--once"],
                           capture_output=True, text=True, timeout=20)
        lines = p.stderr.splitlines()
        log("--server %-24s exit %d: %s" % (url, p.returncode, p.stderr.strip()))
        check(p.returncode == 64, "--server %s: exit %d, expected 64" % (url, p.returncode))
        check(len(lines) == 1 and lines[0].startswith("alert-exec: --server: "),
              "--server %s: stderr %r" % (url, p.stderr))
        check(says in lines[0], "--server %s: message does not say %r: %r" % (url, says, lines[0]))
        check("secret" not in p.stderr, "the password is in the message: %r" % p.stderr)
        check(side_files(db) == [], "--server %s left files behind: %s" % (url, side_files(db)))


def run_once(wd, srv, db, name):
    """A --once run; returns its log. It must neither crash nor fail on
    the database."""
    eng = Engine(wd, srv.url, db=db, name=name)
    rc, out, err = eng.once(timeout=120)
    check(rc in (0, 75), "%s: exit %d: %s" % (name, rc, err[-2000:]))
    return eng, err


def check_raw_nul_name(wd, srv):
    # json.dumps writes \u0000 (refused as a whole body): put the raw byte in.
    evil = entry_bytes("alert-x\x00evil", query="q-evil").replace(b"\\u0000", b"\x00")
    body = b"[" + evil + b"," + entry_bytes("alert-x", query="q-real") + b"]"
    check(b"\x00" in body, "the body holds no raw NUL")
    srv.set_alerts(body)
    eng, err = run_once(wd, srv, wd.database("nul"), "nul")
    rows = eng.sql("select name, query from alert")
    check(rows == [("alert-x", "q-real")], "stored alerts %s" % rows)
    skips = [l for l in err.splitlines() if "skipping entry" in l]
    check(len(skips) == 1 and "skipping entry 0: a string holds the raw control byte 0x00"
          in skips[0], "skip warnings: %s" % skips)
    log("raw NUL in a name: entry 0 skipped, alert-x is the real one (query %s)" % rows[0][1])


def check_huge_secs(wd, srv):
    srv.set_alerts(json.dumps([alert("never", repeat=2 ** 31 - 1, sustain=2 ** 31 - 1),
                               alert("huge-interval", interval=2 ** 31 - 1)]).encode())
    eng, err = run_once(wd, srv, wd.database("secs"), "secs")
    rows = eng.sql("select name, repeat_ms, sustain_ms from alert")
    check(rows == [("never", MAX_SECS * 1000, MAX_SECS * 1000)], "stored alerts %s" % rows)
    for field in ("repeatIntervalSecs", "sustainSecs"):
        got = [l for l in err.splitlines() if "keeping entry 0 (never): " + field in l]
        check(len(got) == 1, "%s: warnings %s" % (field, got))
    check("skipping entry 1 (huge-interval): intervalSecs is over" in err,
          "no warning for the huge intervalSecs: %s" % err[-2000:])
    log("repeatIntervalSecs and sustainSecs of 2^31-1: alert kept with %d s" % MAX_SECS)


def check_flood(wd, srv):
    db = wd.database("flood")
    srv.set_alerts(b"[" + b",".join([b"42"] * 5000 + [entry_bytes("good")]) + b"]")
    eng, err = run_once(wd, srv, db, "flood")
    lines = err.splitlines()
    skips = [l for l in lines if "skipping entry" in l]
    more = [l for l in lines if "more warnings not logged" in l]
    check(len(skips) == MAX_ENTRY_WARNINGS, "%d skip lines" % len(skips))
    check(len(more) == 1 and "more=4950 " in more[0], "summary %s" % more)
    check(eng.sql("select name from alert") == [("good",)], "good alert not stored")
    log("5000 bad entries: %d lines of warnings in all" % (len(skips) + len(more)))

    # More entries than ALERTS_MAX_ENTRIES: refused whole, the stored one stays.
    srv.set_alerts(b"[" + b",".join([b"0"] * (MAX_ALERTS + 1)) + b"]")
    eng, err = run_once(wd, srv, db, "too-many")
    check("alerts: body has more than %d entries" % MAX_ALERTS in err,
          "no message about the size: %s" % err[-2000:])
    check("skipping entry" not in err, "entries of a refused body were warned about")
    rows = eng.sql("select name, retired from alert")
    check(rows == [("good", None)] or rows == [("good", 0)], "stored alerts %s" % rows)
    log("%d entries: body refused, stored definition kept" % (MAX_ALERTS + 1))


def check_raw_nul_query(wd, srv):
    srv.set_alerts(json.dumps([alert("q-nul", query="t-nul", interval=1)]).encode())
    # Read up to the NUL, the key is "value" and the value 500: CRITICAL.
    srv.set_query("t-nul", b'{"value\x00x": 500, "value": 5}')
    posts = srv.post_count()
    eng = Engine(wd, srv.url, db=wd.database("query"), name="query").start()
    try:
        eng.wait_started()
        row = wait_until(lambda: eng.sql("select failures, last_error from alert_status "
                                         "where name = 'q-nul' and failures > 0"), 20,
                         "a failed query")
        check("raw control byte 0x00" in (row[0][1] or ""), "last_error %r" % (row[0][1],))
        state = eng.sql("select state from alert_status where name = 'q-nul'")
        check(state == [("PASS",)], "state %s" % state)
        check(srv.post_count() == posts, "a call was sent for a misread value")
        rc, _ = eng.kill(15)
        check(rc == 0, "exit %d after SIGTERM" % rc)
    finally:
        if eng.proc.poll() is None:
            eng.proc.kill()
    log("raw NUL in a /query key: failed query (%s), state kept" % row[0][1])


def main():
    wd = Workdir("server-input")
    srv = ScriptedServer()
    t0 = time.time()
    try:
        check_bad_server_urls(wd)
        check_raw_nul_name(wd, srv)
        check_huge_secs(wd, srv)
        check_flood(wd, srv)
        check_raw_nul_query(wd, srv)
    finally:
        srv.stop()
    wd.cleanup()
    log("ok (%.1f s)" % (time.time() - t0))


if __name__ == "__main__":
    main()
