#!/usr/bin/env bash
# data/countries.tsv: the English country names of `visit:country_name`, written from Debian's
# iso-codes package (/usr/share/iso-codes/json/iso_3166-1.json, installed with apt-get when
# missing). Plausible's own country names come from the same list, by the same rule (the
# `common_name` where there is one, else `name`; plus Kosovo, `XK`, which ISO 3166-1 lacks but
# the country databases use), so a filter written for Plausible (`["is", "visit:country_name",
# ["Estonia"]]`) matches here too. Run it after a Debian release updates iso-codes, then run
# `cargo test --lib country_names` and read `git diff data/countries.tsv`.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
json=/usr/share/iso-codes/json/iso_3166-1.json
if [[ ! -f $json ]]; then
  apt-get install -y --no-install-recommends iso-codes >/dev/null
fi
version=$(dpkg-query -W -f='${Version}' iso-codes)
python3 - "$json" "$version" >"$repo/data/countries.tsv" <<'PY'
import json, sys
path, version = sys.argv[1], sys.argv[2]
rows = {e["alpha_2"]: e.get("common_name") or e["name"] for e in json.load(open(path))["3166-1"]}
rows.setdefault("XK", "Kosovo")
print(f"# ISO 3166-1 alpha-2 code<TAB>English name. From Debian iso-codes {version} "
      "(LGPL-2.1-or-later), written by scripts/refresh-countries.sh; do not edit.")
for code in sorted(rows):
    print(f"{code}\t{rows[code]}")
PY
# The package's copyright and licence statement ships beside the other lists' licences (its
# header of addresses left out: the files here name no hosts).
grep -v -E '^(Format|Upstream-Contact|Source):' /usr/share/doc/iso-codes/copyright \
  >"$repo/data/licenses/countries.LICENSE"
echo "data/countries.tsv: $(grep -vc '^#' "$repo/data/countries.tsv") countries (iso-codes $version)"
