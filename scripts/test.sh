#!/usr/bin/env bash
# Installs what is missing, builds the daemon alone (BUILD_TESTING=OFF, with
# only its own libraries visible), then builds and runs every test: once
# plain, once under AddressSanitizer + UndefinedBehaviorSanitizer, and the
# threading tests once more under ThreadSanitizer (the sanitizer suites
# leave out the integration tests that only repeat on PostgreSQL what the
# plain suite ran there, label pg_repeat, and the benchmark's smoke run,
# label bench, which checks the benchmark, not the engine), then fuzzes
# the parsers of server input and the JSON form of log lines, 40 s each.
# Exits non-zero on any failure, and, in CI (CI=true), when a test was
# skipped: CI runs as root, where every case can run, so a skip there
# means a case silently did not. Elsewhere skips are listed.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh clang libclang-rt-14-dev clang-format faketime chromium
# The man page (scdoc), the unit's check (systemd-analyze), the .deb
# (dpkg-dev's dpkg-shlibdeps, file).
scripts/install-deps.sh scdoc systemd dpkg-dev file

jobs=$(nproc)
run_suite() {
	local dir=$1; shift
	local out skipped
	echo "== $dir: configure and build" >&2
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j"$jobs" >/dev/null
	echo "== $dir: test" >&2
	out=$dir/ctest-output.log
	(cd "$dir" && ctest --output-on-failure --no-tests=error -j"$jobs" ${CTEST_ARGS:-}) \
		2>&1 | tee "$out"
	# ctest lists a test that exited with its SKIP_RETURN_CODE as
	# "NAME (Skipped)" under "The following tests did not run".
	skipped=$(sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (Skipped)$/\1/p' "$out")
	if [ -n "$skipped" ]; then
		echo "== $dir: skipped: $(echo "$skipped" | tr '\n' ' ')" >&2
		if [ "${CI:-}" = true ]; then
			echo "== $dir: a skipped test fails the run in CI" >&2
			return 1
		fi
	fi
}

# The daemon's sources are laid out as .clang-format says.
echo "== format: src/ against .clang-format" >&2
clang-format --dry-run --Werror src/*.c src/*.h
# The daemon alone builds with SQLite, libcurl, cJSON and libmicrohttpd (no
# test libraries, no libpq).
scripts/build-daemon-alone.sh build-alone
run_suite build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	CTEST_ARGS="-LE pg_repeat|bench" run_suite build-asan -DALERT_EXEC_ASAN=ON -DCMAKE_BUILD_TYPE=Debug
# ThreadSanitizer: the tests that exercise the worker threads.
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 CTEST_ARGS="-L threads -LE pg_repeat" \
	run_suite build-tsan -DALERT_EXEC_TSAN=ON
# The parsers of server input under libFuzzer: 40 s per target (FUZZ_SECONDS).
echo "== fuzz: /alerts and /query parsers, JSON log lines" >&2
scripts/fuzz.sh "${FUZZ_SECONDS:-40}"
echo "== all suites passed" >&2
