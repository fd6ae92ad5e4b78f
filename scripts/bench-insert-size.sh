#!/usr/bin/env bash
# What the size of tally's inserts costs ClickHouse: tally serve at a steady rate of realistic
# beacons, once per `[ingest]` setting given, alternating, each time on a fresh database; per run
# ClickHouse's CPU (during the load, and the merges in the 40 s after it) per 1,000 rows, tally's
# CPU and peak RSS, and the p99 latency. Two settings compared in one run, alternating, because
# this machine's load changes from minute to minute. It measures; it never fails on a number.
#
#   scripts/bench-insert-size.sh                     defaults against
#                                                    "batch_size = 50000; flush_interval_ms = 5000"
#   scripts/bench-insert-size.sh "" "flush_interval_ms = 2000" ...   any settings, "" = defaults
#   TALLY_BENCH_RATE=10000 TALLY_BENCH_SECONDS=30 TALLY_BENCH_ROUNDS=2 (the defaults)
#
# Needs what scripts/bench-ingest.sh builds and starts: target/release/{tally,tally-load}, the
# test corpora, and its ClickHouse (.cache/clickhouse-bench-ingest, HTTP 18126), which this
# script starts and stops itself. tally on CPU 1 with one worker, ClickHouse and the load
# generator on CPU 0, as there. Database tally_bench_insert (dropped before each run).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cache="${TALLY_CACHE:-$repo/.cache}"
ch_dir="$cache/clickhouse-bench-ingest"
http_port="${TALLY_BENCH_CH_HTTP:-18126}"
tcp_port="${TALLY_BENCH_CH_TCP:-19003}"
ch="http://127.0.0.1:$http_port"
listen="${TALLY_BENCH_LISTEN:-127.0.0.1:18986}"
rate="${TALLY_BENCH_RATE:-10000}"
seconds="${TALLY_BENCH_SECONDS:-30}"
rounds="${TALLY_BENCH_ROUNDS:-2}"
work="$cache/bench-insert-size"
mkdir -p "$work"
if [[ $# -eq 0 ]]; then
  set -- "" "batch_size = 50000; flush_interval_ms = 5000"
fi
for bin in target/release/tally target/release/tally-load; do
  [[ -x $bin ]] || { echo "$bin is missing: run scripts/bench-ingest.sh once (it builds it)" >&2; exit 2; }
done

scripts/clickhouse.sh start "$ch_dir" "$http_port" "$tcp_port" >/dev/null
trap 'scripts/clickhouse.sh stop "$ch_dir" >/dev/null 2>&1 || true' EXIT
ch_pid=$(cat "$ch_dir/clickhouse.pid")
taskset -a -cp 0 "$ch_pid" >/dev/null

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
query() { curl -sS "$ch" --data-binary "$1"; }

config() { # $1: "k = v; k = v"
  cat <<EOF
[server]
listen = "$listen"
trusted_proxies = ["127.0.0.1/32"]

[clickhouse]
url = "$ch"
database = "tally_bench_insert"

[privacy]
country_database = "$cache/testdata/dbip-country.mmdb"

[rollups]
enabled = false

[ingest]
$(tr ';' '\n' <<<"$1" | sed 's/^ *//')

[[sites]]
domain = "www.gemeente-noord.example"
[[sites]]
domain = "www.provincie-west.example"
[[sites]]
domain = "werkenbij.example"
[[sites]]
domain = "www.museum-oost.example"
[[sites]]
domain = "docs.dienst-zuid.example"
EOF
}

echo "steady ${rate}/s for ${seconds} s (after 3 s warm-up), $rounds rounds; $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p')"
printf '%-48s %10s %14s %12s %10s %9s %8s\n' "[ingest]" rows "CH ms per 1k" "tally CPU s" "peak RSS" "p99 ms" inserts
for round in $(seq "$rounds"); do
  for setting in "$@"; do
    config "$setting" > "$work/tally.toml"
    query "DROP DATABASE IF EXISTS tally_bench_insert" >/dev/null
    TOKIO_WORKER_THREADS=1 TALLY_LOG=warn taskset -c 1 target/release/tally serve \
      --config "$work/tally.toml" > "$work/tally.log" 2>&1 &
    tally_pid=$!
    for _ in $(seq 100); do curl -sf "$listen/readyz" >/dev/null && break; sleep 0.2; done
    sleep 2
    ch0=$(cpu_ticks "$ch_pid"); t0=$(cpu_ticks "$tally_pid")
    taskset -c 0 target/release/tally-load --target "$listen" --testdata "$cache/testdata" \
      --rate "$rate" --connections 64 --duration "$seconds" --warmup 3 --json "$work/load.json" \
      >"$work/load.txt" 2>&1
    t1=$(cpu_ticks "$tally_pid")
    hwm=$(awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$tally_pid/status")
    inserts=$(curl -s "$listen/metrics" | awk '/^tally_insert_duration_seconds_count/ {print $2}')
    kill -TERM "$tally_pid"; wait "$tally_pid" || true
    sleep 40  # the merges of what was inserted
    ch1=$(cpu_ticks "$ch_pid")
    rows=$(query "SELECT count() FROM tally_bench_insert.events")
    p99=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['measured']['latency_ms']['p99'])" "$work/load.json")
    awk -v s="${setting:-(defaults)}" -v rows="$rows" -v ch="$((ch1 - ch0))" -v t="$((t1 - t0))" \
      -v tick="$(getconf CLK_TCK)" -v hwm="$hwm" -v p99="$p99" -v n="$inserts" 'BEGIN {
        printf "%-48s %10d %14.2f %12.1f %10s %9s %8s\n", s, rows, ch / tick * 1e6 / rows, t / tick, hwm, p99, n }'
  done
done
query "DROP DATABASE IF EXISTS tally_bench_insert" >/dev/null
