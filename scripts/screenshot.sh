#!/usr/bin/env bash
# Takes a screenshot of a running engine's status page with headless
# Chromium, for people to look at (no test runs it; test_status_page.py
# checks the page's DOM).
# Usage: scripts/screenshot.sh [URL] [FILE]
#   URL   the page (default http://127.0.0.1:9097/, the default --listen)
#   FILE  the PNG to write (default status-page.png)
set -euo pipefail
url=${1:-http://127.0.0.1:9097/}
out=${2:-status-page.png}
command -v chromium >/dev/null || { echo "screenshot: chromium is not installed (scripts/install-deps.sh chromium)" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# --no-sandbox: Chromium refuses to run as root with its sandbox (CI, containers).
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
	--window-size=1280,900 --screenshot="$(realpath -m "$out")" "$url" 2>/dev/null
echo "screenshot: $out" >&2
