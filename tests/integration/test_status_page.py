"""The status page in a real browser: headless Chromium loads / from a
running daemon against the emulator, and the test reads the DOM it built
(--dump-dom) with the standard library's html.parser: one row per alert
with its state, firing first (CRITICAL, then WARN, then PASS; by name
within a state), the pending calls (the server refuses every notify here,
so they stay in the outbox), and a hostile alert name shown as text: the
exact name in the cell's text, and no <script> element anywhere.

Exits 77 when chromium is not installed (scripts/test.sh installs it)."""

import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser

from harness import Emulator, Engine, Workdir, alert, check, log, wait_until

HOSTILE = "<script>alert(1)</script> \"'"
ALERTS = [
    alert(HOSTILE, query="q-hostile"),
    alert("also-critical"),
    alert("warner"),
    alert("quiet"),
]
TIMELINE = {"q-hostile": [[0, 500]], "q-also-critical": [[0, 300]], "q-warner": [[0, 150]],
            "q-quiet": [[0, 1]]}
WANT = [(HOSTILE, "CRITICAL"), ("also-critical", "CRITICAL"), ("warner", "WARN"),
        ("quiet", "PASS")]


class Page(HTMLParser):
    """The rows of the page's tables (by table id) as lists of cell texts,
    each row's class, the count of <script> elements, and the text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables = {}
        self.table = None
        self.row = None
        self.cell = None
        self.scripts = 0
        self.text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        elif tag == "table":
            self.table = self.tables.setdefault(a.get("id"), [])
        elif tag == "tr" and self.table is not None:
            self.row = {"class": a.get("class"), "cells": []}
        elif tag == "td" and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.row["cells"].append("".join(self.cell))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.row["cells"]:
                self.table.append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


def dump_dom(wd, url):
    profile = wd.file("chromium-profile")
    p = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--user-data-dir=" + profile, "--dump-dom", url],
                       capture_output=True, text=True, timeout=120)
    with open(wd.file("chromium.log"), "w") as f:
        f.write(p.stderr)
    check(p.returncode == 0, "chromium exited %d: %s" % (p.returncode, p.stderr[-2000:]))
    return p.stdout


def main():
    if shutil.which("chromium") is None:
        log("chromium is not installed: skipped")
        sys.exit(77)
    wd = Workdir("status-page")
    emu = Emulator(wd, alerts=ALERTS, timeline=TIMELINE, args=["--fail-rate-notify", "1"])
    eng = Engine(wd, emu.url, listen=True).start()
    url = eng.listen_url() + "/"
    eng.wait_started()
    want_states = sorted(WANT)
    wait_until(lambda: sorted(eng.sql("select name, state from alert_status")) == want_states
               and eng.sql("select count(*) from outbox where status = 'pending' "
                           "and attempts > 0")[0][0] >= 3,
               20, "every alert in its state and the notifies refused")
    dom = dump_dom(wd, url)
    page = Page()
    page.feed(dom)
    rows = page.tables.get("alerts")
    check(rows is not None, "no table#alerts in the DOM: %s" % dom[:2000])
    got = [(r["cells"][0], r["cells"][1]) for r in rows]
    log("rows:", got)
    check(got == WANT, "the rows: %s, expected %s" % (got, WANT))
    check([r["class"] for r in rows] == ["critical", "critical", "warn", "pass"],
          "row classes: %s" % [r["class"] for r in rows])
    for r in rows:
        check(len(r["cells"]) == 7, "a row of %d cells: %s" % (len(r["cells"]), r))
    check(rows[0]["cells"][5] != "0", "the hostile alert shows no pending call: %s" % rows[0])
    check(page.scripts == 0, "%d <script> elements in the DOM" % page.scripts)
    check(HOSTILE in "".join(page.text), "the hostile name is not in the text")
    calls = page.tables.get("calls") or []
    log("pending calls listed:", len(calls))
    check(len(calls) >= 3, "pending calls listed: %d" % len(calls))
    check(any(c["cells"][1] == HOSTILE and c["cells"][2] == "notify" for c in calls),
          "the hostile alert's pending notify is not listed: %s" % calls)
    check(all(c["cells"][6] for c in calls), "a refused call without its last error: %s" % calls)
    text = " ".join("".join(page.text).split())
    check("2 critical, 1 warn, 1 pass" in text, "the summary: %s" % text[:500])
    rc, _ = eng.kill(15)
    emu.stop()
    check(rc == 0, "the daemon exited %d" % rc)
    shutil.rmtree(wd.file("chromium-profile"), ignore_errors=True)
    wd.cleanup()
    log("ok")


if __name__ == "__main__":
    main()
