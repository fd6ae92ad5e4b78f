#!/usr/bin/env bash
# The reports benchmark: loads 10 million events over 90 days for one site (and three small
# sites) into a dedicated local ClickHouse, rolls the complete days up, and times every report
# of the stats API for 1 day, 30 days and 90 days (median and max of 7 requests after a
# warm-up). Prints a Markdown table and writes it into BENCHMARKS.md ("Reports"). It measures;
# it never fails on a timing.
#
#   scripts/bench-reports.sh            reuse the loaded data when its parameters match
#   scripts/bench-reports.sh --fresh    drop the benchmark database and load it again
#   TALLY_BENCH_KEEP=1 ...              leave ClickHouse running afterwards
#
# Ports: ClickHouse HTTP 18125 / native 19002 (TALLY_BENCH_CH_HTTP / TALLY_BENCH_CH_TCP; the
# tests use 18123, the demo 18124), tally 127.0.0.1:18998 (TALLY_BENCH_LISTEN).
# Data: .cache/clickhouse-bench (about 350 MB with the defaults; TALLY_CACHE moves .cache).
# Takes about 10 minutes on 2 cores with a fresh load (1 min load, 4 min rollup, 5 min timing).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cache="${TALLY_CACHE:-$repo/.cache}"
http_port="${TALLY_BENCH_CH_HTTP:-18125}"
tcp_port="${TALLY_BENCH_CH_TCP:-19002}"
listen="${TALLY_BENCH_LISTEN:-127.0.0.1:18998}"
big_events="${TALLY_BENCH_EVENTS:-10000000}"
timeout="${TALLY_BENCH_TIMEOUT:-600}"
ch_dir="$cache/clickhouse-bench"
ch_url="http://127.0.0.1:$http_port"
db=tally_bench
work="$cache/bench-reports"
config="$work/tally.toml"
command_line="scripts/bench-reports.sh${*:+ $*}"

fresh=0
for arg in "$@"; do
  case $arg in
    --fresh) fresh=1 ;;
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

# The site list, in one place: domain=time zone=events over the 90 days=distinct paths.
# The first site is the one whose reports are timed; the small ones make the tables shared,
# as they are in production, and each has its own time zone.
sites="big.example=Europe/Amsterdam=$big_events=2000"
sites+=",small-a.example=Europe/Amsterdam=100000=200"
sites+=",small-b.example=Europe/London=200000=300"
sites+=",small-c.example=America/New_York=300000=400"

step() { printf '\n== %s\n' "$*"; }
helper() { python3 scripts/bench_reports.py "$1" --ch "$ch_url" --db "$db" --sites "$sites" "${@:2}"; }
ch_query() { curl -sS --fail-with-body "$ch_url/" --data-binary "$1"; }
# Seconds since the epoch with decimals; date's %N, unlike $EPOCHREALTIME, ignores the locale.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

command -v cargo >/dev/null || { echo "cargo not found: install Rust >= 1.89 (rustup) first" >&2; exit 1; }

step "installing system packages where missing"
scripts/install-deps.sh

step "building tally (release)"
cargo build --release --quiet
# What was built, for the report (the tree may change while the benchmark runs).
built_from=$(git rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
if ! git diff --quiet HEAD -- src schema Cargo.toml Cargo.lock 2>/dev/null; then
  built_from+=" with uncommitted changes under src/ or schema/"
fi

step "starting ClickHouse on 127.0.0.1:$http_port (data in $ch_dir)"
scripts/clickhouse.sh start "$ch_dir" "$http_port" "$tcp_port"
tally_pid=""
cleanup() {
  if [[ -n $tally_pid ]]; then
    kill -TERM "$tally_pid" 2>/dev/null || true
    wait "$tally_pid" 2>/dev/null || true
  fi
  if [[ ${TALLY_BENCH_KEEP:-} == 1 ]]; then
    echo "ClickHouse left running (TALLY_BENCH_KEEP=1): $ch_url; stop it with scripts/clickhouse.sh stop $ch_dir"
  else
    scripts/clickhouse.sh stop "$ch_dir" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# The token only guards a loopback port for the length of the run; a fixed one keeps reruns
# simple. The config holds its SHA-256, as tally wants.
mkdir -p "$work"
token="tally-bench-token"
token_sha256=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
{
  cat <<TOML
# Written by scripts/bench-reports.sh for the reports benchmark; rewritten on every run.
[server]
listen = "$listen"

[clickhouse]
url = "$ch_url"
database = "$db"

[ingest]
spool_dir = "$work/spool"

[rollups]
enabled = true

# Keep every raw event of the 90 days: with the default (30 days) serve's retention job would
# drop two thirds of them at start, and the reports read from raw events would read a third.
[retention]
raw_days = 3650

[[api_tokens]]
name = "bench"
sha256 = "$token_sha256"
TOML
  IFS=, read -ra site_specs <<<"$sites"
  for spec in "${site_specs[@]}"; do
    IFS='=' read -r domain tz _ <<<"$spec"
    printf '\n[[sites]]\ndomain = "%s"\ntime_zone = "%s"\n' "$domain" "$tz"
  done
} >"$config"
./target/release/tally check-config "$config" >/dev/null

step "events"
state=$(helper status)
if [[ $fresh == 1 || $state != current ]]; then
  # Rollup tables and the marker go with the events: a reload starts from an empty database.
  # The parameters are the generator's, the dates (the 90 days end yesterday) and a hash of
  # tally's schema and rollup SQL: another day, or another schema, means a reload.
  if [[ $fresh == 1 ]]; then reason="--fresh"; else reason="no complete data for these parameters"; fi
  echo "loading ($reason) ..."
  ch_query "DROP DATABASE IF EXISTS $db"
  ./target/release/tally migrate --config "$config"
  helper load
else
  echo "reusing the loaded data (same parameters; --fresh reloads)"
  ./target/release/tally migrate --config "$config"
  helper topup
fi
helper settle

step "rollup"
# tally logs one line per site-day rolled up, with its time; the helper sums them up.
rollup_log="$work/rollup.log"
started=$(now)
TALLY_LOG=info ./target/release/tally rollup --config "$config" 2>"$rollup_log" ||
  { tail -n 30 "$rollup_log" >&2; exit 1; }
helper rollup-log "$rollup_log" "$(elapsed "$started")"
helper settle

step "starting tally serve on $listen"
TALLY_LOG=warn ./target/release/tally serve --config "$config" >"$work/serve.log" 2>&1 &
tally_pid=$!
for _ in $(seq 100); do
  curl -sf "http://$listen/readyz" >/dev/null 2>&1 && break
  kill -0 "$tally_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.2
done
curl -sf "http://$listen/readyz" >/dev/null || { echo "tally did not become ready" >&2; exit 1; }

step "timing the reports (7 runs after a warm-up, each period)"
helper measure --tally "http://$listen" --token "$token" --timeout "$timeout" \
  --pids "$(cat "$ch_dir/clickhouse.pid") $tally_pid" --out "$work/results.json"

step "results (also written into BENCHMARKS.md)"
helper report --results "$work/results.json" --markdown BENCHMARKS.md --command "$command_line" --built-from "$built_from"
