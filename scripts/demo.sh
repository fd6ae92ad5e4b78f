#!/usr/bin/env bash
# The README's first command: installs what is missing, starts a local ClickHouse on loopback,
# applies the schema and runs tally for a demo site, printing the snippet to paste into a page.
# Stop it with Ctrl-C (tally drains its queue; ClickHouse is stopped too).
#
#   scripts/demo.sh                      site www.example.org (also answers for localhost)
#   TALLY_DEMO_SITE=www.my.org scripts/demo.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cache="${TALLY_CACHE:-$repo/.cache}"
site="${TALLY_DEMO_SITE:-www.example.org}"
listen="${TALLY_DEMO_LISTEN:-127.0.0.1:8080}"
http_port="${TALLY_DEMO_CH_HTTP:-18124}"
tcp_port="${TALLY_DEMO_CH_TCP:-19001}"
ch_dir="$cache/clickhouse-demo"

# A cargo >= 1.89: rustup's when present, else Debian 12's own toolchain is installed.
source scripts/ensure-cargo.sh
ensure_cargo
scripts/install-deps.sh
scripts/testdata.sh >/dev/null
cargo build --release --quiet
scripts/clickhouse.sh start "$ch_dir" "$http_port" "$tcp_port"
trap 'scripts/clickhouse.sh stop "$ch_dir" >/dev/null 2>&1 || true' EXIT

# A stats API token for this demo (the config holds only its SHA-256).
token="demo_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
token_sha256=$(printf %s "$token" | sha256sum | cut -d' ' -f1)

# A dashboard user for the demo; tally keeps only the argon2 hash.
password="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
user_toml=$(printf '%s\n' "$password" | ./target/release/tally hash-password demo | sed '1d')

config="$cache/demo.toml"
cat >"$config" <<TOML
# Demo configuration written by scripts/demo.sh; docs/configuration.md lists every key.
[server]
listen = "$listen"

[clickhouse]
url = "http://127.0.0.1:$http_port"
database = "tally_demo"

[ingest]
spool_dir = "$cache/demo-spool"

[privacy]
country_database = "$cache/testdata/dbip-country.mmdb"

[[api_tokens]]
name = "demo"
sha256 = "$token_sha256"

[[sites]]
domain = "$site"
aliases = ["localhost", "127.0.0.1"]

$user_toml
TOML

echo
echo "Rows arrive in ClickHouse; look at them with:"
echo "  clickhouse-client --port $tcp_port -q 'SELECT ts, site, name, path, referrer_host, country, device, browser FROM tally_demo.events ORDER BY ts DESC LIMIT 20'"
echo "Pages on localhost also need the attribute data-allow-localhost in the snippet."
echo "Reports (most visited pages today) and the privacy report:"
echo "  curl -s -H 'Authorization: Bearer $token' http://$listen/api/v2/query \\"
echo "    -d '{\"site_id\": \"$site\", \"metrics\": [\"visitors\", \"pageviews\"], \"date_range\": \"day\", \"dimensions\": [\"event:page\"]}'"
echo "  curl -s -H 'Authorization: Bearer $token' http://$listen/privacy"
echo "The dashboard: http://$listen/ (user demo, password $password)"
echo
./target/release/tally serve --config "$config"
