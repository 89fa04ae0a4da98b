#!/usr/bin/env bash
# Builds the .deb: a Release build of the daemon alone (BUILD_TESTING=OFF)
# installed under /usr, with the man page, then cpack -G DEB. Prints the
# path of the .deb on stdout (the build's chatter goes to stderr).
# Usage: scripts/package.sh [BUILD_DIR]   (default build-package)
set -euo pipefail
cd "$(dirname "$0")/.."

# scdoc builds the man page; dpkg-shlibdeps (dpkg-dev) finds the Depends.
scripts/install-deps.sh scdoc dpkg-dev file >&2
dir=${1:-build-package}
rm -f "$dir"/alert-exec_*.deb
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
	-DCMAKE_INSTALL_PREFIX=/usr >&2
grep -q '^SCDOC:FILEPATH=/' "$dir/CMakeCache.txt" || {
	echo "package: scdoc not found: the package would lack its man page" >&2
	exit 1
}
cmake --build "$dir" -j"$(nproc)" >&2
(cd "$dir" && cpack -G DEB >&2)
deb=$(ls "$dir"/alert-exec_*.deb)
echo "$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")"
