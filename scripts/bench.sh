#!/usr/bin/env bash
# The benchmark: builds a release build, runs the engine against the alerts
# emulator in eight workloads (bench/bench.py says which), prints one table
# and writes it to bench/results.md with the machine and the date.
#
# Usage: scripts/bench.sh [--smoke] [--build-dir DIR] [--no-build] [--out FILE]
#                         [--only LIST] [--keep]
#   --smoke       every workload at a tiny size, a few seconds in all: checks
#                 that the benchmark works (ctest runs it as bench_smoke)
#   --build-dir   where to build (default build-release, CMAKE_BUILD_TYPE=Release)
#   --no-build    use the binaries already in --build-dir
#   --out         the results file (default bench/results.md; with --smoke
#                 DIR/bench/smoke-results.md)
#   --only        comma-separated subset of ceilings,throughput,schedule,storm,scale,
#                 listener,postgres
#   --keep        keep the work directory (databases, logs, query logs)
# The full run takes about fifteen minutes and wants a quiet 2-core machine
# (PostgreSQL's workload is skipped, and says so, without its server binaries).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-release"
smoke=0
no_build=0
out=""
pass=()

while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) smoke=1 ;;
	--no-build) no_build=1 ;;
	--keep) pass+=(--keep) ;;
	--build-dir) build=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift ;;
	--out) out="$2"; shift ;;
	--only) pass+=(--only "$2"); shift ;;
	-h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench.sh: unknown option $1 (try --help)" >&2; exit 64 ;;
	esac
	shift
done

if [ $smoke -eq 1 ]; then
	pass+=(--smoke)
	[ -n "$out" ] || out="$build/bench/smoke-results.md"
	# The smoke run must not install anything: wrk is skipped when missing.
else
	[ -n "$out" ] || out="$root/bench/results.md"
	command -v wrk >/dev/null || "$root/scripts/install-deps.sh" wrk
	pass+=(--notes "$root/bench/notes.md" --json "$build/bench-results.json")
fi

if [ $no_build -eq 0 ]; then
	"$root/scripts/install-deps.sh"
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$build" -j"$(nproc)" --target alert-exec alerts-emulator curl_ceiling \
		sqlite_ceiling >/dev/null
fi
mkdir -p "$(dirname "$out")"
exec python3 "$root/bench/bench.py" --build-dir "$build" --out "$out" "${pass[@]}"
