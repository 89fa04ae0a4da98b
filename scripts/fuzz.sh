#!/usr/bin/env bash
# Builds the libFuzzer targets of the two parsers of server input
# (alerts_parse, alerts_parse_value) and of the JSON form of log lines
# (log_json_line) with plain clang into build-fuzz/,
# then runs each for SECONDS on a copy of its seed corpus.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 30)
#
# The copies live in build-fuzz/corpus_alerts and build-fuzz/corpus_query
# and keep what earlier runs found (rm -rf build-fuzz for a fresh start);
# the seeds in tests/fuzz/ are only read. A crash, leak, timeout or OOM
# makes the script exit 1 after both targets ran; the input is saved in
# build-fuzz/crashes_<target>/ and can be replayed with
#   build-fuzz/fuzz_<target> build-fuzz/crashes_<target>/crash-...
# and is also copied into the working corpus build-fuzz/corpus_<target>/,
# which every run executes first: a rerun fails on it again until the bug
# is fixed (then copy the input into tests/fuzz/corpus_<target>/ as a seed).
# Each run prints its libFuzzer seed; FUZZ_SEED=N replays one.
# Run it under nice on a shared machine: nice scripts/fuzz.sh 300
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
case $seconds in
'' | *[!0-9]* | 0 | 0*)
	echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] (a positive integer)" >&2
	exit 2
	;;
esac

scripts/install-deps.sh clang libclang-rt-14-dev

out=build-fuzz
mkdir -p "$out"

cflags=(-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1
	"-fsanitize=fuzzer,address,undefined" -fno-sanitize-recover=undefined
	-Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Isrc)
read -r -a libs <<<"$(pkg-config --cflags --libs libcjson)"

# name  max_len: /query bodies are small; /alerts room for ~100 entries.
# log_json: the JSON form of log lines, whose values the server wrote.
targets=("alerts 16384" "query 4096" "log_json 4096")

for t in "${targets[@]}"; do
	read -r name _ <<<"$t"
	echo "== fuzz_$name: build" >&2
	clang "${cflags[@]}" src/alerts.c src/json.c src/hash.c src/log.c src/log_json.c "tests/fuzz/fuzz_$name.c" \
		-o "$out/fuzz_$name" "${libs[@]}" -lm -lpthread
done

failed=0
for t in "${targets[@]}"; do
	read -r name max_len <<<"$t"
	corpus=$out/corpus_$name
	crashes=$out/crashes_$name
	log=$out/fuzz_$name.log

	mkdir -p "$corpus"
	cp -rf "tests/fuzz/corpus_$name/." "$corpus/"
	rm -rf "$crashes"
	mkdir -p "$crashes"
	echo "== fuzz_$name: run ${seconds}s (log: $log)" >&2

	rc=0
	seed=${FUZZ_SEED:-$(( $(date +%s%N) % 2147483647 + 1 ))}
	echo "fuzz_$name: seed $seed (rerun with FUZZ_SEED=$seed)" >&2
	start=$SECONDS
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$out/fuzz_$name" -max_total_time="$seconds" -max_len="$max_len" \
		-timeout=10 -rss_limit_mb=2048 -dict=tests/fuzz/json.dict \
		-print_final_stats=1 -seed="$seed" -artifact_prefix="$crashes/" "$corpus" \
		>"$log" 2>&1 || rc=$?
	elapsed=$((SECONDS - start))

	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -n 1)
	files=$(find "$corpus" -type f | wc -l)
	echo "fuzz_$name: ${execs:-?} executions in ${elapsed}s (${rate:-?}/s)," \
		"corpus $files files (${added:-?} new this run), exit $rc"

	if [ "$rc" -ne 0 ]; then
		failed=1
		tail -n 40 "$log" >&2
		found=$(find "$crashes" -type f \( -name 'crash-*' -o -name 'leak-*' \
			-o -name 'timeout-*' -o -name 'oom-*' \) | sort)
		if [ -n "$found" ]; then
			while IFS= read -r f; do
				cp "$f" "$corpus/"
				echo "fuzz_$name: FOUND $f (kept in $corpus/: a rerun replays it)" >&2
			done <<<"$found"
		else
			echo "fuzz_$name: failed with exit $rc and no saved input (see $log)" >&2
		fi
	fi
done
exit "$failed"
