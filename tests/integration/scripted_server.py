"""An alerts server whose every answer a test scripts: per endpoint a
function of the request that returns (status, headers, body), possibly
after a delay. Every request is recorded with its arrival time, so a test
judges what the engine did from what the server saw."""

import http.server
import json
import threading
import time
import urllib.parse


def ok(obj=None):
    """A 200 with a JSON body."""
    return 200, {}, json.dumps({} if obj is None else obj).encode()


class Hit:
    """One request as the server saw it."""

    def __init__(self, endpoint, target, body, at):
        self.endpoint = endpoint    # "alerts", "query", "notify", "resolve"
        self.target = target        # the query's target, else None
        self.body = body            # the decoded JSON body of a POST, else None
        self.at = at                # arrival, time.time() (taken as the handler starts: late
                                    # by however long the thread waited to run)
        self.replying = None        # just before the answer is written: the client has
                                    # not seen it before this
        self.answered = None        # after it was written


class ScriptedServer:
    """script[endpoint](hit, n) -> (status, headers, body), n counting the
    endpoint's requests from 1. Defaults: /alerts [], /query 0, /notify and
    /resolve 200."""

    def __init__(self):
        self.lock = threading.Lock()
        self.hits = []
        self.script = {
            "alerts": lambda hit, n: ok([]),
            "query": lambda hit, n: ok({"value": 0}),
            "notify": lambda hit, n: ok(),
            "resolve": lambda hit, n: ok(),
        }
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def serve(self, endpoint, target=None, body=None):
                hit = Hit(endpoint, target, body, time.time())
                with server.lock:
                    server.hits.append(hit)
                    n = sum(1 for h in server.hits if h.endpoint == endpoint)
                    fn = server.script.get(endpoint)
                if fn is None:
                    status, headers, payload = 404, {}, b"not found"
                else:
                    status, headers, payload = fn(hit, n)
                hit.replying = time.time()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                hit.answered = time.time()

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                target = urllib.parse.parse_qs(url.query).get("target", [None])[0]
                self.serve(url.path.strip("/"), target)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"raw": raw.decode("latin-1")}
                self.serve(self.path.strip("/"), body=body)

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that hangs up early (a stop cuts a request off)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def on(self, endpoint, fn):
        with self.lock:
            self.script[endpoint] = fn

    def of(self, endpoint):
        with self.lock:
            return [h for h in self.hits if h.endpoint == endpoint]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
