#!/usr/bin/env bash
# Storing visits: the visit job's cost per event, by how many hours one ClickHouse statement
# stores (`tally visits --batch-hours N`, and a day split into visitor ranges with
# `--batch-events`), on one data set, the variants one after the other
# (each run starts from no stored visits). Prints each run's events per CPU-second (ClickHouse
# and tally together). It measures; it never fails on a timing.
#
#   scripts/bench-visits.sh                 700,000 events of one site over 7 days (and today's)
#   TALLY_BENCH_EVENTS=N ...                another number of events
#   TALLY_BENCH_DAYS=N ...                  over N days instead of 7 (a busier hour per event)
#   TALLY_BENCH_ROUNDS=N ...                rounds of the five variants (default 2)
#   TALLY_BENCH_VARIANTS="1 full;1" ...     some of them ("1 full", 1, 4, 24, 24/20000)
#
# Its own ClickHouse on HTTP 18126 / native 19003 (TALLY_BENCH_CH_HTTP / TALLY_BENCH_CH_TCP),
# data in .cache/clickhouse-bench-visits. tally is the debug build (its own CPU is under a
# tenth of the total: the work is ClickHouse's).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cache="${TALLY_CACHE:-$repo/.cache}"
http_port="${TALLY_BENCH_CH_HTTP:-18126}"
tcp_port="${TALLY_BENCH_CH_TCP:-19003}"
events="${TALLY_BENCH_EVENTS:-700000}"
rounds="${TALLY_BENCH_ROUNDS:-2}"
days="${TALLY_BENCH_DAYS:-7}"
ch_dir="$cache/clickhouse-bench-visits"
ch_url="http://127.0.0.1:$http_port"
db=tally_bench_visits
sites="big.example=Europe/Amsterdam=$events=2000"
work="$ch_dir/work"
mkdir -p "$work"

scripts/install-deps.sh
cargo build --quiet --bin tally
tally="$repo/target/debug/tally"
# With the part log, the job says what merging its tables cost (bench_reports.py job).
TALLY_CH_PART_LOG=1 scripts/clickhouse.sh start "$ch_dir" "$http_port" "$tcp_port"
trap 'scripts/clickhouse.sh stop "$ch_dir"' EXIT
scripts/clickhouse.sh log-queries "$ch_dir" "$http_port"
ch_pid=$(cat "$ch_dir/clickhouse.pid")
ch_query() { curl -sS --fail-with-body "$ch_url/" --data-binary "$1"; }

cat >"$work/tally.toml" <<TOML
[clickhouse]
url = "$ch_url"
database = "$db"
# Keep every raw event: the runs store the whole period again and again.
[retention]
raw_days = 3650
[[sites]]
domain = "big.example"
time_zone = "Europe/Amsterdam"
TOML
ch_query "DROP DATABASE IF EXISTS $db"
"$tally" migrate --config "$work/tally.toml" >/dev/null
python3 scripts/bench_reports.py load --ch "$ch_url" --db "$db" --sites "$sites" --days "$days"

# The events were generated with past times, before migration 0011's mark: as if the
# migration had come first, `events_by_hour` holds them all and no mark, so that every batch
# reads the open visits the batch before left (`visit_carry`) and its own hours. The variant
# "1 full" puts a mark after them back: every batch then reads its whole read range from
# `events`, as before migration 0011 (and as the first batch after the upgrade does).
# Merges are stopped around the TRUNCATE: on 18.16 a merge still running when the table is
# truncated commits its part afterwards, and the table then held a third more rows than
# `events` and the migration's mark again (a run of 2026-12-05 14:23).
by_hour_from_the_start() {
  ch_query "SYSTEM STOP MERGES $db.events_by_hour"
  ch_query "TRUNCATE TABLE $db.events_by_hour"
  ch_query "INSERT INTO $db.events_by_hour SELECT * FROM $db.events"
  ch_query "SYSTEM START MERGES $db.events_by_hour"
  local copied raw
  copied=$(ch_query "SELECT count() FROM $db.events_by_hour")
  raw=$(ch_query "SELECT count() FROM $db.events")
  if [[ $copied != "$raw" ]]; then
    echo "events_by_hour holds $copied rows, events $raw: not a copy" >&2
    exit 1
  fi
}
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before"
for round in $(seq "$rounds"); do
  # The last variant: a day per batch, stored in visitor ranges of at most 20,000 events of
  # their own per statement (`--batch-events`), as a busy site's batches are at 500,000.
  IFS=';' read -r -a variants <<<"${TALLY_BENCH_VARIANTS:-1 full;1;4;24;24/20000}"
  for variant in "${variants[@]}"; do
    if [[ $variant == *full ]]; then
      by_hour_from_the_start
      ch_query "INSERT INTO $db.events_by_hour (site, ts) SELECT '', toStartOfMinute(now()) + 600"
    elif [[ $variant == 1 ]]; then
      by_hour_from_the_start
    fi
    hours=${variant%% *}
    hours=${hours%%/*}
    events_arg=()
    [[ $variant == */* ]] && events_arg=(--batch-events "${variant#*/}")
    for table in visits visit_pages visit_page_days visit_slices visit_carry; do
      ch_query "TRUNCATE TABLE $db.$table"
    done
    echo "round $round, --batch-hours $hours ${events_arg[*]}${variant#"${variant%% *}"}:"
    python3 scripts/bench_reports.py job --ch "$ch_url" --db "$db" --sites "$sites" --days "$days" \
      --name visits --ch-pid "$ch_pid" --log "$work/visits-${variant//[\/ ]/-}.log" -- \
      "$tally" visits --config "$work/tally.toml" --batch-hours "$hours" "${events_arg[@]}" | sed 's/^/  /'
  done
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) after"
