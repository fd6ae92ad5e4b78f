#!/usr/bin/env bash
# The reports benchmark: loads 10 million events over 90 days for one site (and three small
# sites) into a dedicated local ClickHouse, stores their visits (`tally visits`, timed with the
# CPU it takes), rolls the days up (`tally rollup`), and times every report of the stats API for
# 1 day, 30 days and 90 days (median and max of 7 requests after a warm-up): the unfiltered ones
# (rollups), filtered ones, a two-dimension breakdown and time_on_page_median (stored visits),
# realtime, and dashboard pages through a share link; the unit-row reports also against a second
# tally with `visits.store = false` on the same data (the way before issue 14). Prints Markdown
# and writes it into BENCHMARKS.md ("Reports"). It measures; it never fails on a timing.
#
#   scripts/bench-reports.sh                  reuse the loaded data when its parameters match
#   scripts/bench-reports.sh --fresh          drop the benchmark database and load it again
#   scripts/bench-reports.sh --days 365       the 12-month variant (40.6M events for the big site,
#                                             its own database; periods 30 days, 90 days, 12 months)
#   scripts/bench-reports.sh --compare A B    time the unfiltered reports with the release builds
#                                             of commits A and B (before issue 14: no stored visits)
#                                             on the same data, their requests alternating
#   TALLY_BENCH_KEEP=1 ...                    leave ClickHouse running afterwards
#   TALLY_BENCH_EVENTS=N ...                  events of big.example over the period
#   TALLY_BENCH_SMALL_SITES=0 ...             only big.example (a shorter `tally visits`)
#   TALLY_BENCH_FINGERPRINT=F ...             keep data loaded under fingerprint F (the `tally=`
#                                             part of the loaded data's parameters) after a
#                                             change to report SQL only
#
# Ports: ClickHouse HTTP 18125 / native 19002 (TALLY_BENCH_CH_HTTP / TALLY_BENCH_CH_TCP; the
# tests use 18123, the demo 18124); tally 127.0.0.1:18998 and the next three ports (the
# `visits.store = false` tally, the two builds of --compare) (TALLY_BENCH_LISTEN).
# Data: .cache/clickhouse-bench (about 700 MB with the defaults, 2.5 GB more with --days 365).
# Takes about 30 minutes on 2 quiet cores with a fresh load (1 min load, visits, rollup, timing).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cache="${TALLY_CACHE:-$repo/.cache}"
http_port="${TALLY_BENCH_CH_HTTP:-18125}"
tcp_port="${TALLY_BENCH_CH_TCP:-19002}"
listen="${TALLY_BENCH_LISTEN:-127.0.0.1:18998}"
timeout="${TALLY_BENCH_TIMEOUT:-600}"
ch_dir="$cache/clickhouse-bench"
ch_url="http://127.0.0.1:$http_port"
# The command as run, with the variables that change the data (the report quotes it).
command_line="scripts/bench-reports.sh${*:+ $*}"
for v in TALLY_BENCH_SMALL_SITES TALLY_BENCH_EVENTS; do
  [[ -n ${!v:-} ]] && command_line="$v=${!v} $command_line"
done

fresh=0
days=90
compare=()
while (($#)); do
  case $1 in
    --fresh) fresh=1 ;;
    --days) days=${2:?--days takes a number}; shift ;;
    --compare) compare=("${2:?--compare takes two commits}" "${3:?--compare takes two commits}"); shift 2 ;;
    -h | --help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $days =~ ^[0-9]+$ && $days -ge 2 ]] || { echo "--days takes a number of days (>= 2)" >&2; exit 2; }

# Events over the period, as many per day as the 90-day default (TALLY_BENCH_EVENTS: the big site).
scale() { echo $(($1 * days / 90)); }
big_events="${TALLY_BENCH_EVENTS:-$(scale 10000000)}"
if ((${#compare[@]})); then
  db=tally_bench_compare
  block=bench-reports-compare
  periods="1d,30d,90d"
elif [[ $days == 90 ]]; then
  db=tally_bench
  block=bench-reports
  periods="1d,30d,90d"
  before_periods="1d,30d"
else
  db="tally_bench_${days}d"
  block="bench-reports-${days}d"
  # The standard periods the data covers, then the whole of it.
  periods=""
  for n in 1 30 90; do ((n < days)) && periods+="${n}d,"; done
  periods+="${days}d"
  before_periods="${periods%%,*}"
fi
work="$cache/bench-reports/$db"
host=${listen%:*}
port=${listen##*:}

# The site list, in one place: domain=time zone=events over the period=distinct paths.
# The first site is the one whose reports are timed; the small ones make the tables shared,
# as they are in production, and each has its own time zone.
# TALLY_BENCH_SMALL_SITES=0 leaves them out: each site is one visit-job slice per hour of data,
# so on a busy machine they triple the time `tally visits` takes to store the period.
sites="big.example=Europe/Amsterdam=$big_events=2000"
if [[ ${TALLY_BENCH_SMALL_SITES:-1} != 0 ]]; then
  sites+=",small-a.example=Europe/Amsterdam=$(scale 100000)=200"
  sites+=",small-b.example=Europe/London=$(scale 200000)=300"
  sites+=",small-c.example=America/New_York=$(scale 300000)=400"
fi

step() { printf '\n== %s\n' "$*"; }
fingerprint=()
# TALLY_BENCH_FINGERPRINT: reuse data loaded under this fingerprint (printed in the status line)
# after a change that cannot alter it, e.g. to a report's SQL only.
[[ -n ${TALLY_BENCH_FINGERPRINT:-} ]] && fingerprint=(--fingerprint "$TALLY_BENCH_FINGERPRINT")
helper() {
  python3 scripts/bench_reports.py "$1" --ch "$ch_url" --db "$db" --sites "$sites" --days "$days" \
    "${fingerprint[@]}" "${@:2}"
}
ch_query() { curl -sS --fail-with-body "$ch_url/" --data-binary "$1"; }
wait_ready() { # URL PID LOG
  for _ in $(seq 150); do
    curl -sf "$1/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; exit 1; }
    sleep 0.2
  done
  echo "tally at $1 did not become ready" >&2
  exit 1
}

command -v cargo >/dev/null || { echo "cargo not found: install Rust >= 1.89 (rustup) first" >&2; exit 1; }

step "installing system packages where missing"
scripts/install-deps.sh

# tally binaries: this tree's, or (--compare) the release builds of two commits, each from its
# own copy of the tree (git archive) into its own target directory.
if ((${#compare[@]})); then
  bins=()
  labels=()
  for c in "${compare[@]}"; do
    short=$(git rev-parse --short=7 "$c^{commit}")
    src="$cache/bench-reports/commits/$short"
    step "building tally $short (release, $src)"
    if [[ ! -f $src/Cargo.toml ]]; then
      mkdir -p "$src"
      git archive "$short" | tar -x -C "$src"
    fi
    cargo build --release --quiet --manifest-path "$src/Cargo.toml" --target-dir "$src/target" --bin tally
    bins+=("$src/target/release/tally")
    labels+=("$short")
  done
  tally=${bins[0]}
  fingerprint=(--fingerprint "compare-${labels[0]}-${labels[1]}")
  built_from="${labels[0]}"
else
  step "building tally (release)"
  cargo build --release --quiet
  tally=./target/release/tally
  # What was built, for the report (the tree may change while the benchmark runs).
  built_from=$(git rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
  if ! git diff --quiet HEAD -- src schema Cargo.toml Cargo.lock 2>/dev/null; then
    built_from+=" with uncommitted changes under src/ or schema/"
  fi
fi

step "starting ClickHouse on 127.0.0.1:$http_port (data in $ch_dir)"
scripts/clickhouse.sh start "$ch_dir" "$http_port" "$tcp_port"
ch_pid=$(cat "$ch_dir/clickhouse.pid")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ ${TALLY_BENCH_KEEP:-} == 1 ]]; then
    echo "ClickHouse left running (TALLY_BENCH_KEEP=1): $ch_url; stop it with scripts/clickhouse.sh stop $ch_dir"
  else
    scripts/clickhouse.sh stop "$ch_dir" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
# Every query in system.query_log (with its CPU time), so that the report can say what each
# report and each job statement costs ClickHouse.
scripts/clickhouse.sh log-queries "$ch_dir" "$http_port"

# The token only guards loopback ports for the length of the run; fixed ones keep reruns
# simple. The config holds their SHA-256, as tally wants.
mkdir -p "$work"
token="tally-bench-token"
share="tally-bench-share-link"
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
write_config() { # FILE LISTEN EXTRA_TOML SHARE BINARY [DATABASE] [RAW_DAYS]
  {
    cat <<TOML
# Written by scripts/bench-reports.sh for the reports benchmark; rewritten on every run.
[server]
listen = "$2"

[clickhouse]
url = "$ch_url"
database = "${6:-$db}"

[ingest]
spool_dir = "$work/spool-${2##*:}"

[rollups]
enabled = true

# 3650: keep every raw event of the period, for storing the period's visits and for the tally
# that builds visits from raw events; 3 (the default) for the measured tally, as a user has it.
[retention]
raw_days = ${7:-3650}
${3:-}
[[api_tokens]]
name = "bench"
sha256 = "$(sha "$token")"
TOML
    if [[ -n ${4:-} ]]; then
      printf '\n[[dashboard.share_links]]\nsite = "big.example"\nsha256 = "%s"\nname = "bench"\n' "$(sha "$share")"
    fi
    IFS=, read -ra site_specs <<<"$sites"
    for spec in "${site_specs[@]}"; do
      IFS='=' read -r domain tz _ <<<"$spec"
      printf '\n[[sites]]\ndomain = "%s"\ntime_zone = "%s"\n' "$domain" "$tz"
    done
  } >"$1"
  "$5" check-config "$1" >/dev/null
}
config="$work/tally.toml"
if ((${#compare[@]})); then
  write_config "$config" "$host:$((port + 2))" "" "" "${bins[0]}"
  write_config "$work/tally-b.toml" "$host:$((port + 3))" "" "" "${bins[1]}"
else
  write_config "$config" "$listen" "" share "$tally"
  # The measured tally: raw events kept 3 days (the default), so its reports read stored visits
  # and only the last days' raw events, as a user's do. `tally retention` with this config drops
  # the older ones once the visits are stored (a copy stays in ${db}_before).
  write_config "$work/tally-served.toml" "$listen" "" share "$tally" "$db" 3
  write_config "$work/tally-before.toml" "$host:$((port + 1))" $'\n# The way before issue 14: every report builds its visits from raw events.\n[visits]\nstore = false\n' share "$tally" "${db}_before"
fi

step "events"
state=$(helper status)
if [[ $fresh == 1 || $state != current ]]; then
  # Stored visits, rollups and the marker go with the events: a reload starts from an empty
  # database. The parameters are the generator's, the dates (the period ends yesterday) and a
  # hash of tally's schema and visit/rollup/report SQL: another day or schema means a reload.
  if [[ $fresh == 1 ]]; then reason="--fresh"; else reason="no complete data for these parameters"; fi
  echo "loading ($reason) ..."
  ch_query "DROP DATABASE IF EXISTS $db"
  ch_query "DROP DATABASE IF EXISTS ${db}_before"
  "$tally" migrate --config "$config"
  helper load
else
  echo "reusing the loaded data (same parameters; --fresh reloads)"
  "$tally" migrate --config "$config"
  helper topup
fi
helper settle

if ((${#compare[@]} == 0)); then
  step "storing visits (tally visits)"
  # Every ended visit of the period, an hour-slice at a time; timed, with the CPU of tally and
  # ClickHouse, and ClickHouse's work per kind of statement.
  helper job --name visits --ch-pid "$ch_pid" --log "$work/visits.log" -- "$tally" visits --config "$config"
fi

step "rollup (tally rollup)"
helper job --name rollup --ch-pid "$ch_pid" --log "$work/rollup.log" -- "$tally" rollup --config "$config"
helper settle

if ((${#compare[@]})); then
  step "starting both builds' tally serve on $host:$((port + 2)) and $host:$((port + 3))"
  TALLY_LOG=warn "${bins[0]}" serve --config "$config" >"$work/serve-a.log" 2>&1 &
  pids+=($!)
  wait_ready "http://$host:$((port + 2))" "${pids[-1]}" "$work/serve-a.log"
  TALLY_LOG=warn "${bins[1]}" serve --config "$work/tally-b.toml" >"$work/serve-b.log" 2>&1 &
  pids+=($!)
  wait_ready "http://$host:$((port + 3))" "${pids[-1]}" "$work/serve-b.log"

  step "timing the unfiltered reports, the two builds alternating (7 runs each after a warm-up)"
  helper measure-compare --tally "http://$host:$((port + 2))" --other "http://$host:$((port + 3))" \
    --labels "${labels[0]},${labels[1]}" --token "$token" --timeout "$timeout" --periods "$periods" \
    --pids "$ch_pid ${pids[*]}" --out "$work/results.json"

  step "results (also written into BENCHMARKS.md)"
  helper report-compare --results "$work/results.json" --markdown BENCHMARKS.md --block "$block" \
    --command "$command_line" --built-from "${labels[0]} and ${labels[1]}"
  exit 0
fi

step "raw events kept as a user keeps them (retention.raw_days = 3)"
# Every event stays in ${db}_before for the tally without stored visits; the measured tally's
# database keeps the last days' raw events beside its stored visits and rollups.
helper keep-raw
"$tally" retention --config "$work/tally-served.toml"
helper settle

step "starting tally serve on $listen, and one with visits.store = false on $host:$((port + 1))"
TALLY_LOG=warn "$tally" serve --config "$work/tally-served.toml" >"$work/serve.log" 2>&1 &
pids+=($!)
wait_ready "http://$listen" "${pids[-1]}" "$work/serve.log"
TALLY_LOG=warn "$tally" serve --config "$work/tally-before.toml" >"$work/serve-before.log" 2>&1 &
pids+=($!)
wait_ready "http://$host:$((port + 1))" "${pids[-1]}" "$work/serve-before.log"

step "timing the reports (7 runs after a warm-up, each period; 3 for visits.store = false)"
helper measure --tally "http://$listen" --before "http://$host:$((port + 1))" --token "$token" \
  --share "$share" --timeout "$timeout" --periods "$periods" --before-periods "$before_periods" \
  --pids "$ch_pid ${pids[*]}" --out "$work/results.json"

step "results (also written into BENCHMARKS.md)"
helper report --results "$work/results.json" --markdown BENCHMARKS.md --block "$block" \
  --command "$command_line" --built-from "$built_from"
