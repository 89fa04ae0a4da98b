"""The man page and --help list the same flags, both directions: every
long and short flag of `alert-exec --help` (and of the --help of each
subcommand the page's SYNOPSIS names, where that subcommand answers
--help) has an entry in docs/alert-exec.1.scd, and every flag the page
gives an entry to is in one of those --help texts. Fails naming the
missing ones. Also: the page renders with scdoc, CMake built it into
the build directory, and it has the sections a man page is expected to."""

import os
import re
import shutil
import subprocess
import sys

from harness import BUILD_DIR, ENGINE, check, log

SOURCE_DIR = os.environ.get("SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PAGE = os.path.join(SOURCE_DIR, "docs", "alert-exec.1.scd")
FLAG = re.compile(r"(?<![\w-])(--[A-Za-z][\w-]*|-[A-Za-z])(?![\w-])")
SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SUBCOMMANDS", "EXIT STATUS",
            "SIGNALS", "FILES", "ENVIRONMENT", "EXAMPLES", "SEE ALSO"]


def help_flags(text):
    """Flags of the option lines of a --help text: a line that starts,
    after its indent, with a dash; only its first column (up to two
    spaces) names flags."""
    out = set()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-"):
            out |= set(FLAG.findall(re.split(r"\s{2,}", stripped)[0]))
    return out


def page_flags(scd):
    """Flags the page gives an entry to: the term lines of its definition
    lists (a line, indented or not, that starts with *-)."""
    out = set()
    for line in scd.splitlines():
        if re.match(r"^\t*\*-", line):
            out |= set(FLAG.findall(line.replace("\\", "")))
    return out


def main():
    with open(PAGE) as f:
        scd = f.read()
    for s in SECTIONS:
        check(re.search(r"^# %s$" % s, scd, re.M), "the page has no %s section" % s)
    synopsis = scd.split("# SYNOPSIS", 1)[1].split("\n# ", 1)[0]
    subcommands = sorted(set(re.findall(r"^\*alert-exec (\w+)\*", synopsis, re.M)))
    check("check" in subcommands and "status" in subcommands,
          "SYNOPSIS does not name check and status: %r" % subcommands)

    p = subprocess.run([ENGINE, "--help"], capture_output=True, text=True)
    check(p.returncode == 0, "--help exits %d" % p.returncode)
    flags = help_flags(p.stdout)
    sources = {"alert-exec --help": flags}
    for sub in subcommands:
        p = subprocess.run([ENGINE, sub, "--help"], capture_output=True, text=True)
        if p.returncode == 0:
            sources["alert-exec %s --help" % sub] = help_flags(p.stdout)
            flags |= sources["alert-exec %s --help" % sub]
    documented = page_flags(scd)
    log("--help texts read: %s" % ", ".join(sources))
    log("flags in --help: %s" % " ".join(sorted(flags)))
    log("flags in the man page: %s" % " ".join(sorted(documented)))
    undocumented = sorted(flags - documented)
    unknown = sorted(documented - flags)
    check(not undocumented and not unknown,
          "in --help but not in the man page: %s; in the man page but not in --help: %s"
          % (" ".join(undocumented) or "none", " ".join(unknown) or "none"))

    scdoc = shutil.which("scdoc")
    if scdoc is None:
        log("scdoc not installed: the page's flags match, its rendering is not checked")
        sys.exit(77)
    p = subprocess.run([scdoc], input=scd, capture_output=True, text=True)
    check(p.returncode == 0 and p.stdout.startswith(".") and '.TH "alert-exec" "1"' in p.stdout,
          "scdoc fails on the page: %s" % p.stderr)
    built = os.path.join(BUILD_DIR, "alert-exec.1")
    check(os.path.isfile(built) and os.path.isfile(built + ".gz"),
          "CMake did not build %s(.gz) although scdoc is installed" % built)
    log("ok: %d flags in --help and the man page alike; scdoc renders it" % len(flags))


if __name__ == "__main__":
    main()
