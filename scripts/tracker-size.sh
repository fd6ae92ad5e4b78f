#!/bin/sh
# Prints the size of the tracker script served at /t.js: raw bytes and
# gzip -9 bytes (read from stdin, so no file name is stored in the gzip header).
# Usage: scripts/tracker-size.sh [file]   (default: assets/tracker.min.js)
set -eu
cd "$(dirname "$0")/.."
f=${1:-assets/tracker.min.js}
[ $# -gt 0 ] || [ -f "$f" ] || f=assets/tracker.js # not minified (yet)
raw=$(wc -c < "$f" | tr -d ' ')
gz=$(gzip -9 -c < "$f" | wc -c | tr -d ' ')
echo "$f: $raw bytes raw, $gz bytes gzipped (gzip -9)"
