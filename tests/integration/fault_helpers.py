"""Helpers of the fault tests (crash loop, flaky and slow server, outage,
graceful stop): read what the emulator and the engine leave behind and
judge the calls the server accepted against the calls the engine decided.

Kept apart from harness.py so that tests written at the same time do not
edit one file; it only uses harness.py, never changes it."""

import bisect
import json
import re
import time
import urllib.request

from harness import Emulator, alert, check

LEVELS = ("PASS", "WARN", "CRITICAL")

# Shapes of values over a 24 s cycle (thresholds 100 and 200): every change
# of level, each level held 3 s or more. Values are distinct within a
# shape, so a value names the step it came from.
SHAPE_CYCLE = 24
SHAPES = [
    [[0, 50.5], [3, 150.5], [7, 250.5], [11, 151.5], [14, 20.5], [17, 251.5], [21, 60.5]],
    [[0, 252.5], [4, 52.5], [7, 152.5], [12, 42.5], [15, 153.5], [19, 253.5]],
    [[0, 120.5], [10, 30.5], [13, 130.5], [20, 10.5]],
    [[0, 10.25], [3, 300.25], [8, 11.25], [11, 301.25], [15, 160.25], [19, 12.25]],
    [[0, 170.75], [5, 280.75], [9, 171.75], [12, 281.75], [16, 90.75]],
    [[0, 500.5], [20, 50.5]],
]


def shifted(shape, by, cycle=SHAPE_CYCLE):
    """shape moved by `by` seconds round the cycle, as a timeline track."""
    steps = sorted((round((at + by) % cycle, 3), v) for at, v in shape)
    if steps[0][0] > 0:
        steps.insert(0, (0, steps[-1][1]))     # the step that wraps round
    return [list(s) for s in steps]


def cycling_alerts(n, cycle=SHAPE_CYCLE, interval=1, repeat=3, prefix="c"):
    """n alerts c1..cn and their timeline: each follows one of SHAPES,
    shifted by 2.3 s per round of shapes. Serve with --cycle cycle."""
    assert cycle == SHAPE_CYCLE
    alerts, timeline = [], {}
    for i in range(n):
        a = alert("%s%d" % (prefix, i + 1), interval=interval, repeat=repeat)
        alerts.append(a)
        timeline[a["query"]] = shifted(SHAPES[i % len(SHAPES)], (i // len(SHAPES)) * 2.3, cycle)
    return alerts, timeline


def undelivered(db):
    return sql(db, "select count(*) from outbox where status <> 'delivered'")[0][0]


class Drain:
    """What stop_drained did: the SIGTERM's exit took `took` s; the daemon
    stopped at `stopped` and the --once runs ended at `drained` (epoch s);
    `runs` lists (start, end) of each --once run; `left` the outbox rows
    the daemon left pending, before any --once run:
    [(id, alert, created, attempts, next_attempt)]."""

    def __init__(self):
        self.took = self.stopped = self.drained = None
        self.runs = []
        self.left = []

    def check_daemon_sent(self, delay_ms):
        """The daemon itself delivered what it could before it stopped (the
        --once drain must not hide a call it sat on): a row left pending
        was created, or became due again after a failed attempt, within
        delay_ms of the stop, or waits behind an older pending row of its
        alert (one at a time per alert)."""
        stop_ms = self.stopped * 1000
        first_of = {}
        stuck = []
        for rid, name, created, attempts, next_attempt in self.left:
            if name in first_of:
                continue            # behind first_of[name]
            first_of[name] = rid
            if max(created, next_attempt) < stop_ms - delay_ms:
                stuck.append((name, rid, "created %d ms, due %d ms before the stop, %d attempts"
                              % (stop_ms - created, stop_ms - next_attempt, attempts)))
        check(not stuck, "calls the daemon had not sent when it stopped (left to the --once "
              "drain): %s" % stuck[:10])

    def down(self, lo_ms, hi_ms):
        """ms of [lo_ms, hi_ms] between the stop and the end of the drain,
        when no daemon ran: an allowance for check_timing."""
        return max(0, min(hi_ms, self.drained * 1000) - max(lo_ms, self.stopped * 1000))


def stop_drained(eng, tries=20):
    """Stops the running daemon with SIGTERM (it must exit 0), then runs
    --once until a run exits 0: nothing left to send. The evaluations in
    flight at the stop may have enqueued calls, and a --once run delivers
    them (after evaluating what is due, which may enqueue more; a call in
    backoff makes it exit 75, and the next run tries again)."""
    import signal
    d = Drain()
    rc, d.took = eng.kill(signal.SIGTERM)
    d.stopped = time.time()
    check(rc == 0, "exit status %d after SIGTERM" % rc)
    d.left = sql(eng.db, "select o.id, a.name, o.created, o.attempts, o.next_attempt from outbox o "
                         "join alert a on a.id = o.alert_id where o.status = 'pending' order by o.id")
    for _ in range(tries):
        start = time.time()
        rc, out, err = eng.once()
        d.runs.append((start, time.time()))
        if rc == 0:
            d.drained = time.time()
            check(undelivered(eng.db) == 0, "--once exited 0 with calls left: %s" % out)
            return d
        check(rc == 75, "--once exit status %d:\n%s" % (rc, err[-2000:]))
        time.sleep(0.3)
    raise AssertionError("the outbox never drained")


def start_emulator(wd, **kw):
    """An Emulator that also knows when its clock started: the validator
    speaks in seconds since then. start_lo <= start <= emu.started."""
    lo = time.time()
    emu = Emulator(wd, **kw)
    emu.start_lo = lo
    return emu


def read_jsonl(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def stats(emu):
    """GET /stats: {endpoint: {status: count}} with int statuses."""
    with urllib.request.urlopen(emu.url + "/stats", timeout=10) as r:
        raw = json.loads(r.read().decode())
    return {ep: {int(k): v for k, v in codes.items()} for ep, codes in raw.items()}


def count(st, ep, status=None):
    """Requests to ep (of status, or all) in a stats() answer."""
    codes = st.get(ep, {})
    if status is None:
        return sum(codes.values())
    return codes.get(status, 0)


def level(al, v):
    """Level of value v for alert definition al (DESIGN.md section 2)."""
    if v > al["critical"]["value"]:
        return "CRITICAL"
    if v > al["warn"]["value"]:
        return "WARN"
    return "PASS"


def call_of(al, to_state):
    """The call a transition into to_state enqueues: (kind, message)."""
    if to_state == "PASS":
        return ("resolve", "")
    return ("notify", al["warn"]["message"] if to_state == "WARN" else al["critical"]["message"])


def validator_errors(emu):
    """ERROR lines the emulator's validator wrote (read after it stopped)."""
    return [l for l in emu.read_stderr().splitlines() if l.startswith("ERROR")]


def validator_summary(emu):
    lines = [l for l in emu.read_stderr().splitlines() if l.startswith("SUMMARY total")]
    return lines[-1] if lines else "(no validator summary)"


LOG_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z (\w+) (.*)$")


def log_lines(path):
    """[(epoch seconds, level, text)] of an engine log."""
    import calendar
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = LOG_TIME.match(line.rstrip("\n"))
            if not m:
                continue
            y, mo, d, h, mi, s, ms = (int(x) for x in m.groups()[:7])
            t = calendar.timegm((y, mo, d, h, mi, s)) + ms / 1000.0
            out.append((t, m.group(8), m.group(9)))
    return out


def field(text, name):
    m = re.search(r"(?:^| )" + re.escape(name) + r"=(\"(?:[^\"\\]|\\.)*\"|\S*)", text)
    if not m:
        return None
    v = m.group(1)
    return v[1:-1] if v.startswith('"') else v


def sql(db, query, args=()):
    """Rows of query on db, a SQLite path or a PostgreSQL URI."""
    from harness import sql_rows
    return sql_rows(db, query, args)


def outbox_rows(db):
    """{alert: [(id, kind, message, status, attempts, created, delivered)]} in id order."""
    rows = sql(db, "select a.name, o.id, o.kind, coalesce(o.message, ''), o.status, o.attempts, "
                   "o.created, o.delivered from outbox o join alert a on a.id = o.alert_id "
                   "order by o.id")
    out = {}
    for name, *rest in rows:
        out.setdefault(name, []).append(tuple(rest))
    return out


def transitions(db):
    """{alert: [(at ms, from, to, value)]} in commit order."""
    rows = sql(db, "select a.name, t.at, t.from_state, t.to_state, t.value from transition t "
                   "join alert a on a.id = t.alert_id order by t.id")
    out = {}
    for name, *rest in rows:
        out.setdefault(name, []).append(tuple(rest))
    return out


def records_by_alert(records):
    out = {}
    for r in records:
        out.setdefault(r["alert"], []).append((r["t"], r["kind"], r.get("message", "")))
    return out


class Judgement:
    """The calls the server accepted (the emulator's record) judged against
    the calls the engine committed to make (its outbox), alert by alert.

    Walking both in order, a record equal to the next outbox row that came
    between the row's creation and its delivered time delivers it; a record
    equal to the row delivered just before is a second copy
    of that row; anything else is out of order. A row never seen is lost.
    """

    def __init__(self, rows, records):
        self.expected = 0
        self.delivered = 0
        self.lost = []          # (alert, row)
        self.copies = []        # (alert, t of first copy ms, t of this copy ms, (kind, msg))
        self.disorder = []      # (alert, record, what was expected)
        self.not_delivered = [] # rows pending or dead
        recs = records_by_alert(records)

        def fits(row, t):
            # A row is accepted after it was created and before the engine
            # wrote it delivered (same clock; 5 ms for rounding).
            return t >= row[5] - 5 and (row[6] is None or t <= row[6] + 5)

        for name in sorted(set(rows) | set(recs)):
            rs = rows.get(name, [])
            self.expected += len(rs)
            i = 0
            prev = None         # (t, kind, message) of the last accepted record
            for t, kind, msg in recs.get(name, []):
                if i < len(rs) and (rs[i][1], rs[i][2]) == (kind, msg) and fits(rs[i], t):
                    i += 1
                    self.delivered += 1
                    prev = (t, kind, msg)
                elif prev is not None and (prev[1], prev[2]) == (kind, msg):
                    self.copies.append((name, prev[0], t, (kind, msg)))
                    prev = (t, kind, msg)
                else:
                    want = (rs[i][1], rs[i][2]) if i < len(rs) else None
                    self.disorder.append((name, (t, kind, msg), want))
            for r in rs[i:]:
                if r[3] == "delivered":
                    self.lost.append((name, r))
                else:
                    self.not_delivered.append((name, r))

    def check_complete(self):
        check(not self.disorder, "calls out of order or not enqueued by the engine: %s"
              % self.disorder[:10])
        check(not self.lost, "rows marked delivered that the server never accepted: %s"
              % self.lost[:10])
        check(not self.not_delivered, "rows never delivered: %s" % self.not_delivered[:10])


def change_calls_present(trans, rows, defs):
    """Every committed transition enqueued its call in the same commit: the
    outbox of the alert holds, in order, a row of the transition's kind
    and message created at the transition's time."""
    for name, ts in trans.items():
        al = defs[name]
        rs = [(r[1], r[2], r[5]) for r in rows.get(name, [])]
        j = 0
        for at, _frm, to, _v in ts:
            want = call_of(al, to)
            while j < len(rs) and not (rs[j][:2] == want and rs[j][2] == at):
                j += 1
            check(j < len(rs), "%s: transition to %s at %d has no %s row in the outbox"
                  % (name, to, at, want))
            j += 1


def check_chain(trans, defs):
    """Transitions of each alert follow one another and match their values."""
    for name, ts in trans.items():
        prev = "PASS"
        for at, frm, to, v in ts:
            check(frm == prev, "%s: transition %s->%s at %d does not follow %s" % (name, frm, to, at, prev))
            check(to == level(defs[name], v), "%s: value %s is %s, transition went to %s"
                  % (name, v, level(defs[name], v), to))
            prev = to


def first_acceptances(rows, records):
    """{alert: [ms when each outbox row was first accepted, or None]}."""
    recs = records_by_alert(records)
    out = {}
    for name, rs in rows.items():
        it = iter(recs.get(name, []))
        ts = []
        for r in rs:
            t_found = None
            for t, kind, msg in it:
                if (kind, msg) == (r[1], r[2]) and t >= r[5] - 5:
                    t_found = t
                    break
            ts.append(t_found)
        out[name] = ts
    return out


def request_times(path, eps=("notify", "resolve")):
    """{alert: [ms, ...]} of the notify and resolve requests the emulator
    answered, whatever the answer (--request-log): when each call reached
    the server, so when the engine had decided it at the latest."""
    out = {}
    for r in read_jsonl(path):
        if r["ep"] in eps and "alert" in r:
            out.setdefault(r["alert"], []).append(r["us"] / 1000.0)
    for ts in out.values():
        ts.sort()
    return out


def query_times(path):
    """{target: [ms, ...]} of the queries an emulator answered (--query-log)."""
    out = {}
    for q in read_jsonl(path):
        out.setdefault(q["target"], []).append(q["us"] / 1000.0)
    for ts in out.values():
        ts.sort()
    return out


def check_timing(rows, records, trans, defs, copies, end_ms, repeat_ms, interval_ms,
                 call_delay_ms=None, repeat_slack_ms=500, allowance=lambda a, b: 0,
                 answered=None, decide_slack_ms=500, decided=None):
    """The timing of calls, alert by alert:
    - each row is a transition's call or a repeat of the notify row before
      it, enqueued repeat_ms or more after that one was accepted;
    - after a notify, the next call is decided within repeat + interval +
      repeat_slack_ms (a repeat is not late), or the run ended;
    - with call_delay_ms, each row is accepted that soon after it was
      enqueued;
    - in the record, a notify repeating the one before comes repeat_ms or
      more after it, unless it is one of copies (duplicates straddling a
      kill, from Judgement).
    allowance(from_ms, to_ms) adds time the engine could not work.
    With answered ({target: [ms]} of the queries the server answered), a
    repeat is instead due decide_slack_ms after the first answered query of
    its alert that came repeat_ms (+ 250 ms) after the notify: a failed query (a 500
    from a flaky server) decides nothing, so it cannot make a repeat late.
    With decided ({alert: [ms]} of the notify/resolve requests the server
    answered for the alert, whatever the answer: request_times), the next
    call after a notify was decided by the first of them after its
    acceptance, even when its row is gone: a repeat whose attempts failed
    is deleted when a state change supersedes it."""
    firsts = first_acceptances(rows, records)
    for name, rs in rows.items():
        first_t = firsts[name]
        changes = {(at, call_of(defs[name], to)) for at, _f, to, _v in trans.get(name, [])}
        for k, r in enumerate(rs):
            check(first_t[k] is not None, "%s: row %s never accepted" % (name, r))
            if call_delay_ms is not None:
                check(first_t[k] - r[5] <= call_delay_ms + allowance(r[5], first_t[k]),
                      "%s: %s accepted %d ms after it was enqueued"
                      % (name, r[1:3], first_t[k] - r[5]))
            if (r[5], (r[1], r[2])) in changes:
                continue
            check(k > 0 and r[1] == "notify" and (rs[k - 1][1], rs[k - 1][2]) == ("notify", r[2]),
                  "%s: row %s is neither a transition's call nor a repeat of the notify before it"
                  % (name, r))
            # 5 ms: engine and emulator each round their clock to the ms
            check(r[5] - first_t[k - 1] >= repeat_ms - 5,
                  "%s: repeat enqueued %d ms after the notify before it was accepted"
                  % (name, r[5] - first_t[k - 1]))
        for k, r in enumerate(rs):
            if r[1] != "notify":
                continue
            nxt = rs[k + 1][5] if k + 1 < len(rs) else end_ms
            if decided is not None:
                ds = decided.get(name, [])
                i = bisect.bisect_right(ds, first_t[k])
                if i < len(ds):
                    nxt = min(nxt, ds[i])
            if answered is not None:
                ts = answered.get(defs[name]["query"], [])
                # The engine counts from when it saw the 200, a little after
                # the server recorded the call: 250 ms covers that.
                i = bisect.bisect_left(ts, first_t[k] + repeat_ms + 250)
                if i == len(ts):
                    continue  # no query could decide a repeat before the end
                late = nxt - ts[i] - decide_slack_ms
            else:
                late = (nxt - first_t[k] - (repeat_ms + interval_ms + repeat_slack_ms)
                        - allowance(first_t[k], nxt))
            check(late <= 0, "%s: %s accepted at %d, next call decided at %d: a repeat is %d ms late"
                  % (name, r[2], first_t[k], nxt, late))
    copy_times = {(c[0], c[2]) for c in copies}
    for name, rl in records_by_alert(records).items():
        last = None
        for t, kind, msg in rl:
            if kind == "notify" and last is not None and last[1:] == (kind, msg):
                check((name, t) in copy_times or t - last[0] >= repeat_ms - 5,
                      "%s: notify %s %d ms after the previous one" % (name, msg, t - last[0]))
            last = (t, kind, msg)


def check_no_sanitizer_reports(wd):
    """No AddressSanitizer, ThreadSanitizer or UBSan report in any log of
    the work directory (Workdir.cleanup checks it too)."""
    found = wd.sanitizer_reports()
    check(not found, "sanitizer reports:\n" + "\n".join(found))
