"""The .deb: scripts/package.sh builds it (Release, the daemon alone)
into a scratch build directory; its control fields name the package,
the project's version, section admin and a maintainer; its Depends are
exactly the Debian packages of the libraries the binary links (NEEDED,
resolved with ldd and dpkg -S), libsqlite3, libcurl and libcjson among
them; dpkg -x into a scratch root gives a stripped usr/bin/alert-exec that
runs --version from there, the gzipped man page, the unit running that
binary, and the README; `cmake --install` of the build puts the same
files in place."""

import gzip
import os
import re
import shutil
import subprocess
import sys

from harness import ENGINE, Workdir, check, log

SOURCE_DIR = os.environ.get("SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    check(p.returncode == 0, "%s: exit %d\n%s%s" % (" ".join(cmd), p.returncode, p.stdout,
                                                    p.stderr))
    return p.stdout


def needed_packages(binary):
    """The Debian packages of the shared libraries binary links."""
    needed = re.findall(r"NEEDED\s+(\S+)", run(["objdump", "-p", binary]))
    paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", binary]), re.M))
    pkgs = set()
    for lib in needed:
        check(lib in paths, "ldd does not resolve %s" % lib)
        real = os.path.realpath(paths[lib])
        owner = None
        for path in (real, paths[lib], real.replace("/usr/lib/", "/lib/"),
                     real.replace("/lib/", "/usr/lib/", 1)):
            p = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
            if p.returncode == 0:
                owner = p.stdout.split(":")[0]
                break
        check(owner, "no package owns %s (%s)" % (lib, real))
        pkgs.add(owner)
    return needed, pkgs


def main():
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "scdoc", "objdump", "file"):
        if shutil.which(tool) is None:
            log("%s not installed (scripts/install-deps.sh scdoc dpkg-dev file): "
                "cannot build the package" % tool)
            sys.exit(77)
    wd = Workdir("package")
    try:
        out = run([os.path.join(SOURCE_DIR, "scripts", "package.sh"), wd.file("build")],
                  timeout=280)
        deb = out.strip().splitlines()[-1]
        check(deb.endswith(".deb") and os.path.isfile(deb), "package.sh printed %r" % out)
        log("built %s" % deb)

        fields = {k: run(["dpkg-deb", "-f", deb, k]).strip()
                  for k in ("Package", "Version", "Section", "Maintainer", "Depends")}
        log("control: %r" % fields)
        version = run([ENGINE, "--version"]).split()[-1]
        check(fields["Package"] == "alert-exec", "Package %r" % fields["Package"])
        check(fields["Version"] == version, "Version %r, binary %r" % (fields["Version"], version))
        check(fields["Section"] == "admin", "Section %r" % fields["Section"])
        check("@" in fields["Maintainer"], "Maintainer %r" % fields["Maintainer"])

        root = wd.file("root")
        run(["dpkg", "-x", deb, root])
        binary = os.path.join(root, "usr/bin/alert-exec")
        check(os.access(binary, os.X_OK), "no executable usr/bin/alert-exec")
        check(run([binary, "--version"]).strip() == "alert-exec " + version,
              "the packaged binary's --version")
        check("not stripped" not in run(["file", binary]), "the binary is not stripped")

        depends = {d.strip().split()[0] for d in fields["Depends"].split(",")}
        needed, pkgs = needed_packages(binary)
        log("NEEDED %s -> packages %s" % (" ".join(needed), " ".join(sorted(pkgs))))
        check(depends == pkgs, "Depends %r, the linked libraries' packages %r"
              % (sorted(depends), sorted(pkgs)))
        for lib in ("libsqlite3", "libcurl", "libcjson"):
            check(any(d.startswith(lib) for d in depends), "Depends lacks %s" % lib)

        man = os.path.join(root, "usr/share/man/man1/alert-exec.1.gz")
        with gzip.open(man, "rt") as f:
            page = f.read()
        check(re.search(r'^\.TH "alert-exec" "1"', page, re.M), "the man page has no .TH")
        check("--log-format" in page.replace("\\-", "-"), "the man page lacks --log-format")

        unit = os.path.join(root, "usr/lib/systemd/system/alert-exec.service")
        with open(unit) as f:
            text = f.read()
        m = re.search(r"^ExecStart=(\S+)", text, re.M)
        check(m and m.group(1) == "/usr/bin/alert-exec", "ExecStart %r" % (m and m.group(1)))
        check("Type=notify" in text.splitlines(), "the unit is not Type=notify")
        check(os.path.isfile(os.path.join(root, "usr/share/doc/alert-exec/README.md")),
              "no README in usr/share/doc/alert-exec")
        # cmake --install of the same build puts the same files in place.
        destdir = wd.file("destdir")
        run(["cmake", "--install", wd.file("build")], env=dict(os.environ, DESTDIR=destdir))
        for path in ("usr/bin/alert-exec", "usr/share/man/man1/alert-exec.1.gz",
                     "usr/lib/systemd/system/alert-exec.service",
                     "usr/share/doc/alert-exec/README.md"):
            check(os.path.isfile(os.path.join(destdir, path)), "cmake --install: no %s" % path)
        log("ok: %s: control fields, Depends = linked libraries, binary, man page, unit, docs; "
            "cmake --install alike" % os.path.basename(deb))
    finally:
        wd.cleanup()


if __name__ == "__main__":
    main()
