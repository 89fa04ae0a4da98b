"""/metrics, /-/healthy and /-/ready of the real daemon against the
emulator, while a scripted scenario runs: alert `flip` goes PASS ->
CRITICAL -> PASS (a notify and a resolve delivered), then the server
answers 503 for two seconds (failed evaluations, reason server_error),
alert `calm` stays PASS.

Every scrape is parsed by a strict parser of the Prometheus text
exposition format written here: metric and label names, label value
escapes, HELP and TYPE before a family's samples and once each, a
family's samples together, no series twice, histogram buckets with
ascending le ending with +Inf, cumulative counts, _sum and _count present
and _count equal to the +Inf bucket. Between scrapes no counter (nor any
histogram series) goes down. At the end the counters say what the
scenario did.

Readiness: a daemon whose server is down at start, on a new database, is
alive (/-/healthy 200) but not ready (/-/ready 503, one line naming the
definitions). The 503 of /-/healthy needs a scheduler that stopped
turning while the listener runs; test_web.c checks it with a fake stamp.

The listener's own failures: a malformed --listen exits 64 and an
address in use exits 71, each with one line."""

import math
import re
import subprocess
import time
import urllib.error
import urllib.request

from harness import ENGINE, Emulator, Engine, Workdir, alert, calls, check, log, wait_until

ALERTS = [alert("flip", repeat=300), alert("calm")]
DOWN = "9:11"  # seconds after the emulator's start: every endpoint answers 503
TIMELINE = {"q-flip": [[0, 10], [3, 500], [7, 10]], "q-calm": [[0, 1]]}

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def get(url, timeout=5):
    """(status, body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def parse_labels(text, i, where):
    """Parses {a="x",b="y"} from text[i] == '{'; returns (labels, next index)."""
    labels = {}
    i += 1
    while True:
        if text[i] == "}":
            return labels, i + 1
        m = LABEL.match(text, i)
        check(m, "%s: bad label name at %r" % (where, text[i:]))
        name = m.group(0)
        i = m.end()
        check(text[i:i + 2] == '="', "%s: label %s without =\"" % (where, name))
        i += 2
        value = []
        while text[i] != '"':
            if text[i] == "\\":
                esc = text[i + 1]
                check(esc in '\\"n', "%s: bad escape \\%s in label %s" % (where, esc, name))
                value.append("\n" if esc == "n" else esc)
                i += 2
            else:
                check(text[i] != "\n", "%s: raw newline in label %s" % (where, name))
                value.append(text[i])
                i += 1
        check(name not in labels, "%s: label %s twice" % (where, name))
        labels[name] = "".join(value)
        i += 1
        if text[i] == ",":
            i += 1
        else:
            check(text[i] == "}", "%s: expected , or } after label %s" % (where, name))


def parse_value(s, where):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    check(re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s), "%s: bad value %r" % (where, s))
    return float(s)


def family_of(name, types):
    """The family a sample belongs to: itself, or a histogram's
    name_bucket/_sum/_count."""
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("histogram", "summary"):
            return name[:-len(suffix)]
    return None


def parse_exposition(page):
    """Parses a whole page strictly; returns {(name, labels tuple): value}
    and {family: type}."""
    check(page.endswith("\n"), "the page does not end with a newline")
    types, helps, samples, done = {}, {}, {}, set()
    current = None
    for n, line in enumerate(page.split("\n")[:-1], 1):
        where = "line %d %r" % (n, line)
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            check(len(parts) >= 3, where + ": short comment")
            name = parts[2]
            check(NAME.fullmatch(name), where + ": bad metric name")
            check(name not in done, where + ": a family's HELP/TYPE after its samples")
            table = helps if parts[1] == "HELP" else types
            check(name not in table, where + ": second %s for %s" % (parts[1], name))
            if parts[1] == "TYPE":
                check(len(parts) == 4 and parts[3] in TYPES, where + ": bad type")
                table[name] = parts[3]
            else:
                table[name] = parts[3] if len(parts) == 4 else ""
            continue
        if line.startswith("#") or line == "":
            continue
        m = NAME.match(line)
        check(m, where + ": bad metric name")
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, where)
        rest = line[i:]
        check(rest.startswith(" "), where + ": no space before the value")
        fields = rest[1:].split(" ")
        check(1 <= len(fields) <= 2, where + ": trailing fields")
        value = parse_value(fields[0], where)
        family = family_of(name, types)
        check(family is not None, where + ": sample before its family's TYPE")
        check(family in helps, where + ": sample before its family's HELP")
        if current != family:
            check(family not in done, where + ": family %s split in two" % family)
            if current:
                done.add(current)
            current = family
        key = (name, tuple(sorted(labels.items())))
        check(key not in samples, where + ": series twice")
        samples[key] = value
    check_histograms(samples, types)
    return samples, types


def check_histograms(samples, types):
    for family, t in types.items():
        if t != "histogram":
            continue
        groups = {}
        for (name, labels), v in samples.items():
            if name == family + "_bucket":
                d = dict(labels)
                check("le" in d, "%s: bucket without le" % family)
                rest = tuple(x for x in labels if x[0] != "le")
                groups.setdefault(rest, []).append((parse_value(d["le"], family), v))
        check(groups, "%s: no buckets" % family)
        for rest, buckets in groups.items():
            # The page's order must already be ascending: compare with the sorted one.
            les = [b[0] for b in buckets]
            check(les == sorted(les) and len(set(les)) == len(les),
                  "%s: le not ascending: %s" % (family, les))
            check(math.isinf(les[-1]), "%s: the last bucket is not +Inf" % family)
            counts = [b[1] for b in buckets]
            check(all(a <= b for a, b in zip(counts, counts[1:])),
                  "%s: buckets not cumulative: %s" % (family, counts))
            count = samples.get((family + "_count", rest))
            check(count is not None and (family + "_sum", rest) in samples,
                  "%s: _count or _sum missing" % family)
            check(count == counts[-1], "%s: _count %s != +Inf bucket %s" % (family, count, counts[-1]))


def monotonic(prev, cur, types):
    """No counter or histogram series goes down between two scrapes."""
    for key, v in prev.items():
        family = family_of(key[0], types)
        if types.get(family) in ("counter", "histogram") and key in cur:
            check(cur[key] >= v, "%s went down: %s -> %s" % (key, v, cur[key]))


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def parser_rejects():
    """The parser is strict: each of these pages must fail it."""
    good = ("# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\"} 1\n"
            "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum 3\nh_count 2\n")
    parse_exposition(good)
    bad = [
        good.replace("# TYPE a_total counter\n", ""),                  # no TYPE
        good.replace("a_total{k=\"v\"} 1\n", "a_total{k=\"v\"} 1\na_total{k=\"v\"} 2\n"),
        good.replace("k=\"v\"", "k=\"a\\qb\""),                        # bad escape
        good.replace("k=\"v\"", "1k=\"v\""),                            # bad label name
        good.replace("h_count 2", "h_count 3"),                         # _count != +Inf
        good.replace("le=\"+Inf\"} 2", "le=\"+Inf\"} 0"),                # not cumulative
        good.replace("h_bucket{le=\"+Inf\"} 2\n", ""),                   # no +Inf
        good.replace("h_sum 3\n", ""),                                  # no _sum
        good + "# TYPE a_total counter\n",                              # TYPE twice / late
        good + "a_total{k=\"w\"} 1\n",                                   # family split
        good.rstrip("\n"),                                              # no final newline
        good.replace(" 1\n", " one\n", 1),                               # bad value
    ]
    for i, page in enumerate(bad):
        try:
            parse_exposition(page)
        except AssertionError:
            continue
        raise AssertionError("the parser took bad page %d:\n%s" % (i, page))
    prev, _ = parse_exposition(good)
    cur, types = parse_exposition(good.replace("a_total{k=\"v\"} 1", "a_total{k=\"v\"} 0"))
    try:
        monotonic(prev, cur, types)
    except AssertionError:
        return
    raise AssertionError("a counter going down was not seen")


def scenario(wd):
    emu = Emulator(wd, alerts=ALERTS, timeline=TIMELINE, args=["--down", DOWN])
    eng = Engine(wd, emu.url, listen=True).start()
    url = eng.listen_url()
    log("listener at", url)
    prev, types, pages = {}, {}, 0
    deadline = time.time() + 30
    first = None
    while time.time() < deadline:
        status, page = get(url + "/metrics")
        check(status == 200, "/metrics: HTTP %d" % status)
        cur, types = parse_exposition(page)
        pages += 1
        if first is None:
            first = cur
        monotonic(prev, cur, types)
        prev = cur
        # Done once the resolve went out and evaluations worked again
        # after the 503s.
        if (value(cur, "alert_exec_calls_delivered_total", kind="resolve") or 0) >= 1 and \
                (value(cur, "alert_exec_evaluation_failures_total", reason="server_error") or 0) >= 2 \
                and time.time() > emu.started + 13:
            break
        time.sleep(0.3)
    req = urllib.request.Request(url + "/metrics", method="HEAD")
    with urllib.request.urlopen(req, timeout=5) as r:
        check(r.status == 200 and r.read() == b"", "HEAD /metrics: %d" % r.status)
    try:
        urllib.request.urlopen(urllib.request.Request(url + "/metrics", data=b"x"), timeout=5)
        check(False, "POST /metrics answered 2xx")
    except urllib.error.HTTPError as e:
        check(e.code == 405 and e.headers.get("Allow") == "GET, HEAD", "POST: %d" % e.code)
    for path in ("/-/healthy", "/-/ready"):
        status, body = get(url + path)
        log("%s: %d %s" % (path, status, body.strip()))
        check(status == 200 and body == "ok\n", "%s of a running engine: %d %r" % (path, status, body))
    rc, _ = eng.kill(15)
    emu.stop()
    check(rc == 0, "the daemon exited %d" % rc)
    log("parsed %d pages" % pages)
    check(pages >= 5, "only %d scrapes in the scenario" % pages)
    s = prev
    check(s[("alert_exec_build_info", (("version", get_version()),))] == 1, "build_info")
    check(value(s, "alert_exec_evaluations_total") > value(first, "alert_exec_evaluations_total"),
          "evaluations did not grow")
    for (f, t) in (("pass", "critical"), ("critical", "pass")):
        n = value(s, "alert_exec_transitions_total", **{"from": f, "to": t})
        check(n == 1, "transitions %s->%s: %s, expected 1" % (f, t, n))
    check(value(s, "alert_exec_transitions_total", **{"from": "pass", "to": "warn"}) == 0,
          "a transition pass->warn counted")
    for kind in ("notify", "resolve"):
        n = value(s, "alert_exec_calls_delivered_total", kind=kind)
        check(n == 1, "%s delivered: %s, expected 1" % (kind, n))
    check(calls(emu.records(), "flip") == [("notify", "flip", "critical"), ("resolve", "flip", "")],
          "the server's record: %s" % calls(emu.records()))
    check(value(s, "alert_exec_evaluation_failures_total", reason="server_error") >= 2,
          "failures by reason server_error not counted")
    check(value(s, "alert_exec_evaluation_failures_total", reason="client_error") == 0,
          "failures counted as client_error")
    check(value(s, "alert_exec_definitions_refresh_total", result="success") >= 1, "refresh")
    check(value(s, "alert_exec_definitions_last_success_timestamp_seconds") > time.time() - 120,
          "last refresh time")
    check(value(s, "alert_exec_alerts", state="pass") + value(s, "alert_exec_alerts", state="warn")
          + value(s, "alert_exec_alerts", state="critical") == 2, "alerts by state")
    check(value(s, "alert_exec_alerts", state="pass") == 2, "alerts in PASS at the end")
    check(value(s, "alert_exec_outbox_pending") == 0, "calls pending at the end")
    for h in ("schedule_lag_seconds", "query_duration_seconds", "db_commit_duration_seconds"):
        check(value(s, "alert_exec_%s_count" % h) >= value(s, "alert_exec_evaluations_total") / 2,
              "%s counted too few" % h)
    check(value(s, "alert_exec_detection_to_delivery_seconds_count") == 2, "detection to delivery")
    check(value(s, "alert_exec_missed_evaluations_total") == 0, "missed evaluations on an idle engine")


def get_version():
    out = subprocess.run([ENGINE, "--version"], capture_output=True, text=True).stdout
    return out.split()[1]


def not_ready(wd):
    """The server is down at start, the database new: alive, not ready."""
    eng = Engine(wd, "http://127.0.0.1:1", db=wd.database("down"), listen=True,
                 name="down").start()
    url = eng.listen_url()
    eng.wait_started()
    status, body = wait_until(lambda: (lambda r: r if r[0] == 200 else None)(get(url + "/-/healthy")),
                              10, "/-/healthy 200")
    status, body = get(url + "/-/ready")
    log("server down: /-/ready %d %s" % (status, body.strip()))
    check(status == 503, "/-/ready with no definitions: %d" % status)
    check(body == "alert definitions not loaded yet\n", "/-/ready's reason: %r" % body)
    status, _ = get(url + "/-/nope")
    check(status == 404, "unknown path: %d" % status)
    # The address in use: a second daemon (its own database) exits 71.
    p = subprocess.run([ENGINE, "--server", "http://127.0.0.1:1", "--db", wd.file("second.db"),
                        "--listen", url[len("http://"):]], capture_output=True, text=True,
                       timeout=20)
    lines = p.stderr.splitlines()
    log("address in use: exit %d: %s" % (p.returncode, p.stderr.strip()))
    check(p.returncode == 71, "--listen on an address in use: exit %d" % p.returncode)
    check(len(lines) == 1 and "Address already in use" in lines[0], "message: %r" % p.stderr)
    rc, _ = eng.kill(15)
    check(rc == 0, "the daemon exited %d" % rc)
    for bad in ("localhost:80", "127.0.0.1", "1.2.3.4:99999"):
        p = subprocess.run([ENGINE, "--db", wd.file("bad.db"), "--listen", bad],
                           capture_output=True, text=True, timeout=20)
        check(p.returncode == 64 and len(p.stderr.splitlines()) == 1 and "--listen" in p.stderr,
              "--listen %s: exit %d, %r" % (bad, p.returncode, p.stderr))


def main():
    parser_rejects()
    wd = Workdir("metrics")
    scenario(wd)
    not_ready(wd)
    wd.cleanup()
    log("ok")


if __name__ == "__main__":
    main()
