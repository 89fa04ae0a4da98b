"""Analysis helpers of the benchmark: percentiles, schedule gaps from the
emulator's query log, detection-to-delivery from the query log and the
record. Pure functions over parsed JSON lines; bench.py does the I/O.

Times are milliseconds since the epoch (the emulator's "t" fields)."""

import json
import math


def read_jsonl(path):
    """The JSON objects of a JSON-lines file; a torn last line is skipped."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except FileNotFoundError:
        pass
    return out


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of values; None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(math.ceil(p / 100.0 * len(s))) - 1))
    return s[k]


def queries_by_target(query_log):
    """{target: [t, ...]} with times sorted."""
    by = {}
    for q in query_log:
        by.setdefault(q["target"], []).append(q["t"])
    for ts in by.values():
        ts.sort()
    return by


def schedule(query_log, interval_ms, targets, t_from, t_to):
    """Schedule accuracy over the window [t_from, t_to] (ms).

    For every target, the gaps between consecutive queries inside the window
    are compared with the interval: dev = |gap - interval| (a missed
    evaluation shows as a deviation of an interval or more). A gap of about k
    intervals (k >= 2) counts k - 1 missed evaluations; so do the
    intervals missing before the first and after the last query of the
    window, and a target never queried misses every interval of it.

    Returns {"gaps": n, "p50": ms, "p99": ms, "max": ms, "missed": n,
    "early": n (gaps under half an interval: double evaluations)}."""
    by = queries_by_target(query_log)
    devs = []
    missed = 0
    early = 0
    span = t_to - t_from
    for target in targets:
        ts = [t for t in by.get(target, []) if t_from <= t <= t_to]
        if not ts:
            missed += int(span // interval_ms)
            continue
        # Edges: the window holds one query per interval; more than an
        # interval and a half without one before the first or after the
        # last query means evaluations were skipped there.
        missed += max(0, int((ts[0] - t_from - interval_ms / 2) // interval_ms))
        missed += max(0, int((t_to - ts[-1] - interval_ms / 2) // interval_ms))
        for a, b in zip(ts, ts[1:]):
            gap = b - a
            k = int(round(gap / interval_ms))
            if k >= 2:
                missed += k - 1
            elif gap < interval_ms / 2:
                early += 1
            devs.append(abs(gap - interval_ms))
    return {
        "gaps": len(devs),
        "p50": percentile(devs, 50),
        "p99": percentile(devs, 99),
        "max": max(devs) if devs else None,
        "missed": missed,
        "early": early,
    }


def detection_to_delivery(query_log, records, fire_at, alert_target):
    """Detection to delivery for alerts whose value starts firing at a known
    time.

    fire_at: {alert name: wall ms at which its target starts serving a
    firing value}; alert_target: {alert name: target}. For each alert the
    first query of its target at or after fire_at served the first firing
    value; the first notify of the alert recorded after that query is its
    delivery. When the start of the emulator was estimated late and the
    query found lies after the notify, the last query before the notify is
    the one that fired it. Record times are whole milliseconds, so the
    latencies are upper bounds, to within 1 ms.

    Returns (list of latencies in ms, number of alerts without a notify)."""
    by = queries_by_target(query_log)
    notifies = {}
    for r in records:
        if r.get("kind") == "notify":
            # The record holds whole milliseconds, truncated: the call
            # arrived within the millisecond after t.
            notifies.setdefault(r["alert"], []).append(r["t"] + 1)
    lat = []
    undelivered = 0
    for name, t_fire in fire_at.items():
        ts = by.get(alert_target[name], [])
        after = [t for t in ts if t >= t_fire]
        ns = [t for t in notifies.get(name, []) if t >= t_fire - 50]
        if not after or not ns:
            undelivered += 1
            continue
        q = after[0]
        delivered = [t for t in ns if t >= q]
        if delivered:
            lat.append(max(0.0, delivered[0] - q))
            continue
        before = [t for t in ts if t <= ns[0]]
        if before:
            lat.append(ns[0] - before[-1])
        else:
            undelivered += 1
    return lat, undelivered
