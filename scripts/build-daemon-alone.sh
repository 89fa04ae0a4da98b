#!/usr/bin/env bash
# Builds the daemon as a user without the test dependencies would: pkg-config
# sees only SQLite, libcurl, cJSON and libmicrohttpd (cmocka and libpq are
# hidden), and BUILD_TESTING is off. Fails when the build reaches for
# anything else. The daemon built so has no PostgreSQL backend: it must
# answer a PostgreSQL URI with exit 64 and one line saying so.
# Usage: scripts/build-daemon-alone.sh [BUILD_DIR]   (default build-alone)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-alone}
pcdir=$(mktemp -d)
trap 'rm -rf "$pcdir"' EXIT

# Each library's .pc file, and those it requires (libmicrohttpd's names
# gnutls, privately: pkg-config wants it found all the same).
copy_pc() {
	local pkg=$1 req
	[ -e "$pcdir/$pkg.pc" ] && return 0
	cp "$(pkg-config --variable=pcfiledir "$pkg")/$pkg.pc" "$pcdir/"
	for req in $(pkg-config --print-requires --print-requires-private "$pkg" | awk '{print $1}'); do
		copy_pc "$req"
	done
}
for pkg in sqlite3 libcurl libcjson libmicrohttpd; do
	copy_pc "$pkg"
done
rm -rf "$build"
PKG_CONFIG_LIBDIR="$pcdir" PKG_CONFIG_PATH="" \
	cmake -S "$root" -B "$build" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
"$build/alert-exec" --version
if [ -e "$build/alerts-emulator" ] || [ -e "$build/tests" ]; then
	echo "build-daemon-alone: BUILD_TESTING=OFF built the tests or the emulator" >&2
	exit 1
fi
set +e
out=$("$build/alert-exec" --db postgresql:///alerts --server http://127.0.0.1:9/ --once 2>&1)
rc=$?
set -e
if [ "$rc" -ne 64 ] || [ "$out" != "alert-exec: alert-exec was built without PostgreSQL support (libpq)" ]; then
	echo "build-daemon-alone: a PostgreSQL URI got exit $rc and: $out" >&2
	exit 1
fi
echo "build-daemon-alone: the daemon builds with SQLite, libcurl, cJSON and libmicrohttpd alone" >&2
