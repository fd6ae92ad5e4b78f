#!/usr/bin/env bash
# The README's test command: installs what the tests need, starts a real ClickHouse server on
# loopback, and runs every test (format, lints, unit, integration, chDB schema check, browser).
#
#   scripts/test.sh            everything
#   TALLY_SKIP_BROWSER=1 ...   without the headless-Chromium tests
#
# Needs root or sudo for apt-get. Rust: a cargo >= 1.89 (rustup's is used when present), else
# Debian 12's own toolchain is installed (scripts/ensure-cargo.sh). ClickHouse gets ports
# 18123/19000 (TALLY_TEST_CH_HTTP / TALLY_TEST_CH_TCP), or free ones when those are taken.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cache="${TALLY_CACHE:-$repo/.cache}"
# A port is taken when something accepts on it; then let the kernel pick a free one.
port_or_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
  else
    echo "$1"
  fi
}
http_port=$(port_or_free "${TALLY_TEST_CH_HTTP:-18123}")
tcp_port=$(port_or_free "${TALLY_TEST_CH_TCP:-19000}")
ch_dir="$cache/clickhouse-test"

step() { printf '\n== %s\n' "$*"; }

step "Rust: a cargo >= 1.89 with rustfmt and clippy (Debian's toolchain installed where none is found)"
source scripts/ensure-cargo.sh
ensure_cargo --lint

step "installing system packages (ClickHouse 18.16, Node.js, Python venv, Chromium) where missing"
scripts/install-deps.sh

step "fetching real test corpora (country databases, user-agent lists)"
export TALLY_TESTDATA="$cache/testdata"
scripts/testdata.sh
# Personal-data samples in real formats (Faker, fixed seed) for the URL scrubbing test.
python3 scripts/pii_samples.py "$TALLY_TESTDATA/pii-samples.json"

step "starting ClickHouse on 127.0.0.1:$http_port"
scripts/clickhouse.sh stop "$ch_dir" >/dev/null 2>&1 || true
rm -rf "$ch_dir"
scripts/clickhouse.sh start "$ch_dir" "$http_port" "$tcp_port"
trap 'scripts/clickhouse.sh stop "$ch_dir" >/dev/null 2>&1 || true' EXIT
export TALLY_TEST_CLICKHOUSE_URL="http://127.0.0.1:$http_port"
# Where that server keeps table files: the salt-deletion test looks into them.
export TALLY_TEST_CLICKHOUSE_DATA="$ch_dir/data/data"

step "preparing chDB (current ClickHouse) for the schema check"
python3 scripts/chdb_check.py schema/

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test (unit and integration, against the real ClickHouse)"
cargo test --all-targets -- --test-threads 4

if [[ -z "${TALLY_SKIP_BROWSER:-}" ]]; then
  step "browser tests (the tracker in headless Chromium)"
  tests/browser/run.sh
fi

step "cluster tests (ZooKeeper and 2 shards × 2 replicas of ClickHouse 18.16, two collectors)"
scripts/cluster-test.sh
