#!/usr/bin/env bash
# Browser tests: the tracker script (tracker.test.js, against a fake collector or TALLY_URL),
# and, against the real `tally serve` and ClickHouse, the tracker end to end
# (e2e-tracker.test.js), its built-in events and excluded pages (e2e-extensions.test.js) and the
# built-in dashboard (dashboard.test.js). The last three need
# TALLY_TEST_CLICKHOUSE_URL (scripts/test.sh sets it) and target/debug/tally (cargo build, or
# TALLY_BIN); without them they are skipped, saying why. Works on a fresh Debian 12 machine:
# installs chromium (and node/npm) with apt-get if missing, the node packages
# with `npm ci` (from package-lock.json) if missing or outdated, then runs the
# tests with node's built-in runner.
#
#   tests/browser/run.sh                 fake collector inside the test
#   TALLY_URL=http://stats.example.org:8080 tests/browser/run.sh
#                                        send to a running tally server instead
#                                        (the host must be stats.example.org, or a
#                                        name/IP chromium can reach)
# Extra arguments go to `node --test` (e.g. --test-name-pattern='SPA').
set -euo pipefail
cd "$(dirname "$0")"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
apt_install() {
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export CHROMIUM
if [ ! -x "$CHROMIUM" ]; then
  echo "run.sh: installing chromium" >&2
  apt_install chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "run.sh: installing nodejs and npm" >&2
  apt_install nodejs npm
fi
# npm ci records the installed tree in node_modules/.package-lock.json.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# Dashboard screenshots are written to target/screenshots/dashboard/ (the test prints it).
exec node --test "$@" tracker.test.js e2e-tracker.test.js e2e-extensions.test.js dashboard.test.js
