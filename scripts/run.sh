#!/usr/bin/env bash
# Builds alert-exec if needed, starts the emulator of the alerts server on
# :9001 when nothing listens there, and runs the engine on ./alert-exec.db.
# Ctrl-C stops both. Extra arguments go to alert-exec.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

"$root/scripts/install-deps.sh"
if [ ! -x "$root/build/alert-exec" ] || [ ! -x "$root/build/alerts-emulator" ]; then
	echo "run: building into $root/build" >&2
	cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$root/build" -j"$(nproc)" >/dev/null
fi

emulator_pid=""
cleanup() {
	if [ -n "$emulator_pid" ]; then
		kill "$emulator_pid" 2>/dev/null || true
		wait "$emulator_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT

if curl -s -o /dev/null --max-time 2 http://localhost:9001/alerts; then
	echo "run: an alerts server answers on :9001; using it" >&2
else
	echo "run: no alerts server on :9001; starting the emulator (build/alerts-emulator)" >&2
	"$root/build/alerts-emulator" --port 9001 >/dev/null &
	emulator_pid=$!
	for _ in $(seq 50); do
		curl -s -o /dev/null --max-time 1 http://localhost:9001/alerts && break
		sleep 0.1
	done
fi

echo "run: alert-exec --db ./alert-exec.db (Ctrl-C stops)" >&2
# The listener keeps its default address unless "$@" says otherwise.
echo "run: status page http://127.0.0.1:9097/, metrics http://127.0.0.1:9097/metrics" >&2
# Not exec: the trap must stop the emulator when the engine exits.
"$root/build/alert-exec" --server http://localhost:9001 --db ./alert-exec.db "$@" &
engine_pid=$!
trap 'kill -TERM "$engine_pid" 2>/dev/null || true' INT TERM
status=0
wait "$engine_pid" || status=$?
# wait returns early when a trapped signal arrives: wait for the real exit.
if kill -0 "$engine_pid" 2>/dev/null; then
	wait "$engine_pid" || status=$?
fi
exit "$status"
