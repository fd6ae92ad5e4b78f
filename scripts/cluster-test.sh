#!/usr/bin/env bash
# The cluster tests (issue 17): ZooKeeper and four ClickHouse 18.16 servers (2 shards × 2
# replicas) on loopback, then the `#[ignore]`d tests of tests/it/cluster.rs against them.
# scripts/test.sh runs this after the other tests; it can also run on its own.
#
#   scripts/cluster-test.sh        needs TALLY_TESTDATA as scripts/test.sh sets it (or .cache/testdata)
#
# Ports: TALLY_TEST_CLUSTER_BASE (default 19100) and the 24 above it.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cache="${TALLY_CACHE:-$repo/.cache}"
base="${TALLY_TEST_CLUSTER_BASE:-19100}"
dir="$cache/cluster-test"

for p in $(seq "$base" $((base + 24))); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "cluster-test.sh: port $p is taken; set TALLY_TEST_CLUSTER_BASE to a free range of 25" >&2
    exit 1
  fi
done

scripts/cluster.sh install
scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
trap 'scripts/cluster.sh stop "$dir" >/dev/null 2>&1 || true' EXIT
scripts/cluster.sh start "$dir" "$base"

export TALLY_TEST_CLUSTER_DIR="$dir" TALLY_TEST_CLUSTER_BASE="$base"
export TALLY_TESTDATA="${TALLY_TESTDATA:-$cache/testdata}"
# The single-server tests of the binary need a server too; node 1 stands in (they are filtered
# out here, but the support module reads the variable when a test starts).
export TALLY_TEST_CLICKHOUSE_URL="${TALLY_TEST_CLICKHOUSE_URL:-http://127.0.0.1:$((base + 1))}"
cargo test --test it cluster::issue_17 -- --ignored --test-threads 1 --nocapture
