#!/usr/bin/env bash
# Fuzzes the beacon parser (with every reduction ingest applies) and the URL/path scrubbing:
#
#   scripts/fuzz.sh              each target for 60 s
#   scripts/fuzz.sh 600          each target for 600 s
#   scripts/fuzz.sh 600 scrub    only the named target(s): beacon, scrub
#
# Needs the nightly toolchain (libFuzzer and the address sanitizer need it); installs cargo-fuzz
# when it is missing. The corpus lives in fuzz/corpus/<target>/: the committed seed-* files are
# real-looking inputs, everything libFuzzer adds there is kept between runs but not committed.
# fuzz/dicts/<target>.dict lists the tokens libFuzzer splices in. A crash stops the run; its
# input is saved under fuzz/artifacts/<target>/ and the script exits non-zero (reproduce it
# with `cargo +nightly fuzz run <target> <file>`).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(beacon scrub)
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2; }

cargo +nightly --version >/dev/null 2>&1 || {
  echo "the nightly toolchain is needed: rustup toolchain install nightly" >&2
  exit 1
}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# Longest input tried: a beacon is refused above server.max_body_bytes (8192 by default); a
# page URL above 2048 bytes is refused before it is scrubbed.
max_len() {
  case "$1" in
    beacon) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  before=$(find "$corpus" -type f | wc -l)
  printf '\n== %s: %s s, corpus %s files\n' "$target" "$seconds" "$before"
  # Debug assertions on, so integer overflow panics instead of wrapping silently. The
  # dictionary gives libFuzzer the format's keys and the shapes of personal data.
  cargo +nightly fuzz run --debug-assertions "$target" "$corpus" -- \
    -dict="fuzz/dicts/$target.dict" \
    -max_total_time="$seconds" \
    -max_len="$(max_len "$target")" \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -print_final_stats=1
  after=$(find "$corpus" -type f | wc -l)
  printf '== %s: corpus %s -> %s files\n' "$target" "$before" "$after"
done
