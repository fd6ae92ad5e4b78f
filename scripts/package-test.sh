#!/usr/bin/env bash
# Builds the Debian package and checks it the way an operator meets it, on this Debian machine
# (a throwaway one: the package is installed and purged for real, as root):
#
#   1. build          scripts/package.sh --fast
#   2. the .deb       dpkg-deb --info / --contents: fields, conffiles, maintainer scripts, every
#                     file with its owner and mode, no state and no secret shipped
#   3. install        apt-get install ./tally_*.deb (after purging a previous run's package and
#                     deleting its user, so that the postinst is checked from scratch)
#   4. installed      the user, /etc/tally and /var/lib/tally with their owners and modes, the
#                     unit (systemd-analyze verify and security), not enabled; check-config run
#                     as the service user; the commented defaults are the real ones; the
#                     collector fails clearly without ClickHouse; reinstall keeps an edited config
#   4b. serving       the installed binary and config as user tally against a real ClickHouse
#                     (scripts/clickhouse.sh), under strace: beacons → rows, spool while ClickHouse
#                     is away, SIGTERM drain; its system calls, socket families, memory mappings,
#                     written paths, /proc and /dev use checked against what the unit allows
#   5. remove, purge  remove keeps config and state; purge deletes both
#
# Each check prints "ok - ..." or "FAIL - ... : what was found"; the last line counts them.
# Exits non-zero when a check failed. Bounded: every step that could hang has a time-out.
#
#   scripts/package-test.sh
#   TALLY_PACKAGE_BUILD_TIMEOUT=3600 scripts/package-test.sh   (seconds for the build; default 2700)
#   TALLY_PACKAGE_CH_HTTP=18127 TALLY_PACKAGE_CH_TCP=19004 TALLY_PACKAGE_LISTEN=127.0.0.1:18987
#                     (the defaults: ClickHouse's ports and tally's address for step 4b)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export PATH="$HOME/.cargo/bin:/usr/sbin:/sbin:$PATH"
export DEBIAN_FRONTEND=noninteractive
# The unit's environment has no backtrace settings: tally's errors are checked as it prints them there.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
build_timeout="${TALLY_PACKAGE_BUILD_TIMEOUT:-2700}"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: the command's exit status decides; its output is shown on failure.
check() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$what"; else bad "$what: $(printf '%s' "$out" | tail -5)"; fi
}
# expect DESCRIPTION ACTUAL EXPECTED
expect() {
    if [ "$2" = "$3" ]; then ok "$1 ($2)"; else bad "$1: found '$2', expected '$3'"; fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}
# abort DESCRIPTION: a step the rest depends on failed.
abort() {
    bad "$*"
    echo "package-test: stopping here, later checks depend on this step" >&2
    finish
}

[ "$(id -u)" = 0 ] || { echo "package-test: run as root (it installs and purges the package)" >&2; exit 2; }
command -v dpkg-deb >/dev/null && command -v apt-get >/dev/null \
    || { echo "package-test: needs Debian's dpkg and apt" >&2; exit 2; }

apt_install() {
    timeout 300 apt-get update -qq >/dev/null 2>&1
    timeout 600 apt-get install -y -qq "$@" >/dev/null 2>&1
}
# systemd-analyze (package systemd) verifies units without systemd being PID 1.
if ! command -v systemd-analyze >/dev/null; then
    echo "package-test: installing systemd (for systemd-analyze)"
    apt_install systemd || abort "apt-get install systemd (for systemd-analyze)"
fi

work=$(mktemp -d /tmp/tally-package-test.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

# A previous run's package and user: gone first, so that this run checks a first install.
# (any state: installed, config-files, or half-configured after an interrupted run)
if dpkg-query -W -f='${Status}' tally 2>/dev/null | grep -qv 'not-installed'; then
    echo "package-test: purging the tally package a previous run left"
    timeout 300 dpkg --purge tally >/dev/null 2>&1 || abort "purging a previous tally package"
fi
if getent passwd tally >/dev/null; then
    echo "package-test: deleting the user tally a previous run left"
    userdel tally >/dev/null 2>&1 || abort "deleting the leftover user tally"
fi
getent group tally >/dev/null && { groupdel tally >/dev/null 2>&1 || abort "deleting the leftover group tally"; }

echo "== 1. build"
build_log="$work/build.log"
if ! timeout "$build_timeout" scripts/package.sh --fast >"$build_log" 2>&1; then
    tail -30 "$build_log" >&2
    abort "scripts/package.sh built no package (log above; time-out ${build_timeout}s)"
fi
deb=$(tail -1 "$build_log")
[ -f "$deb" ] || abort "scripts/package.sh did not print the .deb's path (last line: $deb)"
ok "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"
ddeb="${deb%/*}/$(basename "$deb" .deb | sed 's/^tally_/tally-dbgsym_/').ddeb"
check "debug symbols packaged separately ($(basename "$ddeb"))" test -s "$ddeb"

echo "== 2. the .deb"
info=$(dpkg-deb --info "$deb") || abort "dpkg-deb --info $deb"
field() { dpkg-deb --field "$deb" "$1"; }
expect "Package" "$(field Package)" tally
expect "Architecture" "$(field Architecture)" "$(dpkg --print-architecture)"
depends=$(field Depends)
check "Depends names libc6 and adduser ($depends)" \
    sh -c 'echo "$1" | grep -q "libc6" && echo "$1" | grep -q "adduser"' _ "$depends"
mkdir -p "$work/control"
dpkg-deb --control "$deb" "$work/control" || abort "dpkg-deb --control $deb"
for script in postinst prerm postrm; do
    expect "maintainer script $script" "$(stat -c %a "$work/control/$script" 2>&1)" 755
done
conffiles=$(sort "$work/control/conffiles" 2>/dev/null | tr '\n' ' ')
expect "conffiles" "$conffiles" "/etc/tally/tally.env /etc/tally/tally.toml "
check "postinst creates the system user with adduser --system" grep -q 'adduser --system' "$work/control/postinst"
check "postinst sets root:tally 0640 on the config (dpkg-statoverride)" \
    grep -q 'dpkg-statoverride --update --add root tally 0640 /etc/tally/tally.toml' "$work/control/postinst"
# The generated part may re-enable a unit the admin had enabled (was-enabled), never more.
no_autostart() {
    # (the message the postinst prints names systemctl enable: echo lines do not count)
    if grep -Ev '^[[:space:]]*(echo|#)' "$1" | grep -Eq 'deb-systemd-invoke (start|restart) |systemctl (start|enable) '; then
        return 1
    fi
    local enables guarded
    enables=$(grep -c 'deb-systemd-helper enable' "$1")
    guarded=$(grep -A3 'was-enabled' "$1" | grep -c 'deb-systemd-helper enable')
    [ "$enables" = "$guarded" ]
}
check "postinst neither enables nor starts the unit on a first install" no_autostart "$work/control/postinst"
# cargo-deb replaces every occurrence of the debhelper token, comments included: one each.
for script in postinst postrm; do
    expect "$script: cargo-deb's systemd sections inserted once" \
        "$(grep -c '^# Automatically added by cargo-deb$' "$work/control/$script")" 2
done
check "postinst restarts only a running unit on upgrade (try-restart)" grep -q 'try-restart' "$work/control/postinst"
check "prerm stops the unit on remove" grep -q 'deb-systemd-invoke stop' "$work/control/prerm"
purge_only() { # the state is deleted in the purge branch and nowhere else
    [ "$(awk '/^purge\)/,/;;/' "$1" | grep -c 'rm -rf /var/lib/tally')" = 1 ] &&
        [ "$(grep -c 'rm -rf /var/lib/tally' "$1")" = 1 ]
}
check "postrm deletes /var/lib/tally on purge only" purge_only "$work/control/postrm"
for script in postinst prerm postrm; do
    check "$script is valid sh" sh -n "$work/control/$script"
done

# "mode owner/group path" for every entry, from dpkg-deb --contents.
# cargo-deb writes owners as numbers (0/0, no names): shown as root/root here.
dpkg-deb --contents "$deb" | awk '{o = ($2 == "0/0") ? "root/root" : $2; print $1, o, $6}' >"$work/contents"
entry() { awk -v p="./$1" '$3 == p {print $1, $2}' "$work/contents"; }
expect "/usr/bin/tally" "$(entry usr/bin/tally)" "-rwxr-xr-x root/root"
expect "/etc/tally/tally.toml (group tally is set by the postinst)" "$(entry etc/tally/tally.toml)" "-rw-r----- root/root"
expect "/etc/tally/tally.env" "$(entry etc/tally/tally.env)" "-rw------- root/root"
expect "/usr/lib/systemd/system/tally.service" "$(entry usr/lib/systemd/system/tally.service)" "-rw-r--r-- root/root"
for doc in copyright README.md docs/operations.md docs/configuration.md; do
    expect "/usr/share/doc/tally/$doc" "$(entry "usr/share/doc/tally/$doc")" "-rw-r--r-- root/root"
done
check "licences of the data compiled into the binary shipped" \
    grep -q '^-rw-r--r-- root/root ./usr/share/doc/tally/data-licenses/' "$work/contents"
check "no state shipped (nothing under /var)" sh -c '! grep -q " \./var/" "$1"' _ "$work/contents"
others_read_etc=$(awk '$3 ~ /^\.\/etc\/tally\/./ && substr($1, 8, 1) == "r" {print $3}' "$work/contents")
expect "files under /etc/tally readable by others" "${others_read_etc:-none}" none
odd=$(awk '$2 != "root/root" || $1 ~ /[sStT]/ || substr($1, 9, 1) == "w" {print $1, $2, $3}' "$work/contents")
expect "entries not root-owned, setuid/setgid/sticky or world-writable" "${odd:-none}" none
mkdir -p "$work/tree"
dpkg-deb --extract "$deb" "$work/tree"
check "no secret in the shipped config (password only as a comment)" \
    sh -c '! grep -Eq "^[[:space:]]*password[[:space:]]*=" "$1"' _ "$work/tree/etc/tally/tally.toml"
check "no secret in the shipped environment file (every line a comment)" \
    sh -c '! grep -Eqv "^(#.*)?$" "$1"' _ "$work/tree/etc/tally/tally.env"
check "binary is stripped (debug info only in the .ddeb)" \
    sh -c '! readelf -S "$1" | grep -q "\.debug_info"' _ "$work/tree/usr/bin/tally"

echo "== 3. install"
cp "$deb" "$work/"
chmod 644 "$work/$(basename "$deb")"
# apt-get fetches the dependencies (adduser, libc6); it reads the local file as user _apt.
if ! timeout 600 apt-get install -y -q "$work/$(basename "$deb")" >"$work/install.log" 2>&1; then
    timeout 300 apt-get update -qq >/dev/null 2>&1
    timeout 600 apt-get install -y -q "$work/$(basename "$deb")" >"$work/install.log" 2>&1 \
        || { tail -20 "$work/install.log" >&2; abort "apt-get install ./$(basename "$deb")"; }
fi
expect "dpkg status" "$(dpkg-query -W -f='${Status}' tally)" "install ok installed"
check "the postinst tells the operator what to do next" grep -q "systemctl enable --now tally" "$work/install.log"

echo "== 4. installed"
expect "tally on the PATH" "$(command -v tally)" /usr/bin/tally
check "tally --version runs" tally --version
pw=$(getent passwd tally) || abort "postinst created no user tally"
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
sys_max=$(awk '$1 == "SYS_UID_MAX" {print $2}' /etc/login.defs 2>/dev/null)
check "tally is a system user (uid $uid <= ${sys_max:-999})" test "$uid" -le "${sys_max:-999}"
expect "its primary group" "$(getent group "$gid" | cut -d: -f1)" tally
expect "its shell" "$shell" /usr/sbin/nologin
expect "its home" "$home" /var/lib/tally
expect "its groups (no others)" "$(id -nG tally)" tally
expect "its password status (L = locked)" "$(passwd -S tally | awk '{print $2}')" L
stat_of() { stat -c '%U:%G %a' "$1" 2>&1; }
expect "/etc/tally/tally.toml" "$(stat_of /etc/tally/tally.toml)" "root:tally 640"
expect "/etc/tally/tally.env" "$(stat_of /etc/tally/tally.env)" "root:root 600"
expect "/etc/tally" "$(stat_of /etc/tally)" "root:root 755"
expect "/var/lib/tally" "$(stat_of /var/lib/tally)" "tally:tally 700"
expect "/var/lib/tally/spool" "$(stat_of /var/lib/tally/spool)" "tally:tally 700"
check "the stat override is recorded" sh -c 'dpkg-statoverride --list /etc/tally/tally.toml | grep -Eqx "root tally 0?640 /etc/tally/tally.toml"'
check "the service user can write the spool" runuser -u tally -- test -w /var/lib/tally/spool
check "the service user cannot write its config" runuser -u tally -- test ! -w /etc/tally/tally.toml
check "the service user cannot read the environment file" runuser -u tally -- test ! -r /etc/tally/tally.env
check "another user cannot read the config" runuser -u nobody -- test ! -r /etc/tally/tally.toml
check "another user cannot list the state folder" runuser -u nobody -- test ! -r /var/lib/tally

unit=/usr/lib/systemd/system/tally.service
check "unit installed" test -f "$unit"
verify_out=$(timeout 60 systemd-analyze verify "$unit" 2>&1)
verify_rc=$?
if [ "$verify_rc" = 0 ] && [ -z "$verify_out" ]; then ok "systemd-analyze verify $unit: clean"
else bad "systemd-analyze verify $unit (exit $verify_rc): $verify_out"; fi
security=$(timeout 60 systemd-analyze security --offline=yes --threshold=20 "$unit" 2>&1)
security_rc=$?
exposure=$(printf '%s\n' "$security" | sed -n 's/.*Overall exposure level for tally.service: \([0-9.]*\).*/\1/p')
if [ "$security_rc" = 0 ] && [ -n "$exposure" ]; then ok "systemd-analyze security: exposure $exposure (at most 2.0 accepted)"
else bad "systemd-analyze security: exposure ${exposure:-?} over 2.0 or not measured: $(printf '%s\n' "$security" | grep '✗')"; fi
unit_has() { grep -qx "$1" "$unit"; }
for line in "User=tally" "ProtectSystem=strict" "StateDirectory=tally" "StateDirectoryMode=0700" \
    "PrivateTmp=yes" "NoNewPrivileges=yes" "CapabilityBoundingSet=" "UMask=0077" \
    "SystemCallFilter=@system-service" "EnvironmentFile=-/etc/tally/tally.env" \
    "ExecStartPre=/usr/bin/tally check-config /etc/tally/tally.toml" \
    "ExecStart=/usr/bin/tally serve --config /etc/tally/tally.toml" "Restart=on-failure"; do
    check "unit: $line" unit_has "$line"
done
check "unit not enabled" test ! -e /etc/systemd/system/multi-user.target.wants/tally.service

# check-config from the installed package, as the service user, on the installed config.
if effective=$(runuser -u tally -- timeout 30 tally check-config /etc/tally/tally.toml 2>&1); then
    ok "runuser -u tally -- tally check-config /etc/tally/tally.toml: $(printf '%s\n' "$effective" | tail -1)"
else
    bad "check-config of the installed config as user tally: $(printf '%s\n' "$effective" | tail -5)"
fi
# The stop time-out must cover a full drain: the grace, one insert's 10 s time-out, and one
# batch's wait for spool room (the grace again).
# check-config prints the effective settings as TOML: `shutdown_grace_secs = 10`.
grace=$(printf '%s\n' "$effective" | sed -n 's/^ *shutdown_grace_secs *= *\([0-9]*\) *$/\1/p')
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")
if [ -n "$grace" ] && [ -n "$stop" ] && [ "$stop" -gt $((2 * grace + 10)) ]; then
    ok "TimeoutStopSec=$stop > 2 × shutdown_grace_secs ($grace) + 10 s insert time-out"
else
    bad "TimeoutStopSec (${stop:-none}) must exceed 2 × shutdown_grace_secs (${grace:-unknown}) + 10"
fi
# The "# key = value" lines are the built-in defaults: uncommented, nothing may change.
sed -E 's/^# ([a-z_]+ = )/\1/' /etc/tally/tally.toml >"$work/uncommented.toml"
commented=$(grep -cE '^# [a-z_]+ = ' /etc/tally/tally.toml)
chmod 644 "$work/uncommented.toml"
if uncommented=$(runuser -u tally -- tally check-config "$work/uncommented.toml" 2>&1) \
    && [ "$uncommented" = "$effective" ]; then
    ok "the $commented commented settings in tally.toml are the built-in defaults"
else
    bad "uncommenting the '# key = value' lines changes the settings: $(diff <(echo "$effective") <(echo "$uncommented") | head -8)"
fi
# Started with no ClickHouse (as the unit would start it), the collector must stop with a
# clear message and a non-zero status, not hang: Restart=on-failure and the start limit rely
# on that. ClickHouse is pointed at a closed loopback port.
sed 's|^\[clickhouse\]$|[clickhouse]\nurl = "http://127.0.0.1:9"|' /etc/tally/tally.toml >"$work/no-clickhouse.toml"
chmod 644 "$work/no-clickhouse.toml"
start=$(date +%s)
runuser -u tally -- timeout 120 tally serve --config "$work/no-clickhouse.toml" >"$work/serve.log" 2>&1
serve_rc=$?
took=$(($(date +%s) - start))
if [ "$serve_rc" != 0 ] && [ "$serve_rc" != 124 ] && grep -qi 'clickhouse\|connect\|migrat' "$work/serve.log"; then
    ok "serve without ClickHouse exits $serve_rc after ${took}s: $(grep -m1 '^Error' "$work/serve.log" | cut -c1-100) … $(grep -v '^ *$' "$work/serve.log" | tail -1 | sed 's/^ *[0-9]*: //' | cut -c1-100)"
else
    bad "serve without ClickHouse: exit $serve_rc after ${took}s (124 = still running at 120 s): $(tail -3 "$work/serve.log")"
fi


echo "== 4b. serving as the unit would: user tally, the installed config, a real ClickHouse, under strace"
# systemd is not PID 1 here, so the sandbox itself cannot be started. What can be checked is
# that the collector, doing its real work (migrate, collect beacons, insert, spool while
# ClickHouse is away, drain on SIGTERM), stays inside what the unit allows: its system calls
# within SystemCallFilter, its sockets within RestrictAddressFamilies, no writable+executable
# memory (MemoryDenyWriteExecute), writes only below /var/lib/tally (ProtectSystem=strict),
# nothing under /home or /root (ProtectHome), only the own process in /proc (ProcSubset=pid),
# only the devices PrivateDevices leaves, and an exit within TimeoutStopSec.
ch_dir="$work/clickhouse"
ch_http="${TALLY_PACKAGE_CH_HTTP:-18127}"
ch_tcp="${TALLY_PACKAGE_CH_TCP:-19004}"
listen="${TALLY_PACKAGE_LISTEN:-127.0.0.1:18987}"
command -v clickhouse-server >/dev/null || timeout 900 scripts/clickhouse.sh install >/dev/null 2>&1 \
    || abort "installing ClickHouse (scripts/clickhouse.sh install)"
command -v strace >/dev/null || apt_install strace || abort "apt-get install strace"
command -v curl >/dev/null || apt_install curl || abort "apt-get install curl"
timeout 180 scripts/clickhouse.sh start "$ch_dir" "$ch_http" "$ch_tcp" >"$work/clickhouse-start.log" 2>&1 \
    || { tail -5 "$work/clickhouse-start.log" >&2; abort "starting ClickHouse on 127.0.0.1:$ch_http"; }
trap 'scripts/clickhouse.sh stop "$ch_dir" >/dev/null 2>&1; rm -rf "$work"' EXIT
sed -e "s|^\[server\]\$|[server]\nlisten = \"$listen\"|" \
    -e "s|^\[clickhouse\]\$|[clickhouse]\nurl = \"http://127.0.0.1:$ch_http\"\ndatabase = \"tally_package_test\"|" \
    /etc/tally/tally.toml >"$work/serve.toml"
chmod 644 "$work/serve.toml"
strace -f -qq -s 200 -u tally -o "$work/strace.log" \
    /usr/bin/tally serve --config "$work/serve.toml" >"$work/serve-ch.log" 2>&1 &
strace_pid=$!
up=
for _ in $(seq 1 120); do
    if curl -sf -o /dev/null "http://$listen/healthz"; then up=1; break; fi
    kill -0 "$strace_pid" 2>/dev/null || break
    sleep 0.5
done
[ -n "$up" ] || { tail -5 "$work/serve-ch.log" >&2; kill "$strace_pid" 2>/dev/null; abort "tally serve as user tally did not answer /healthz within 60 s"; }
ok "tally serve as user tally migrated and answers /healthz on $listen"
tally_pid=$(pgrep -P "$strace_pid" | head -1)
ua='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
beacons() { # N FIRST: N pageviews; prints the HTTP codes that were not 202
    local i code
    for i in $(seq "$2" $(($2 + $1 - 1))); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -A "$ua" -H 'Content-Type: text/plain' \
            --data "{\"n\":\"pageview\",\"u\":\"https://www.example.org/page/$i\",\"d\":\"www.example.org\"}" \
            "http://$listen/api/event")
        [ "$code" = 202 ] || echo "$code"
    done
}
refused=$(beacons 20 1)
expect "20 beacons answered 202" "${refused:-none refused}" "none refused"
rows=0
for _ in $(seq 1 30); do
    rows=$(clickhouse-client --port "$ch_tcp" -q "SELECT count() FROM tally_package_test.events" 2>/dev/null || echo 0)
    [ "$rows" -ge 20 ] 2>/dev/null && break
    sleep 0.5
done
expect "rows in ClickHouse" "$rows" 20
check "/metrics answers" curl -sf -o /dev/null "http://$listen/metrics"
check "/t.js answers" curl -sf -o /dev/null "http://$listen/t.js"
# ClickHouse goes away: the next batch must land in the spool below /var/lib/tally.
scripts/clickhouse.sh kill "$ch_dir" >/dev/null 2>&1
refused=$(beacons 5 21)
expect "5 beacons answered 202 while ClickHouse is away" "${refused:-none refused}" "none refused"
spooled=
for _ in $(seq 1 40); do
    if find /var/lib/tally/spool -maxdepth 1 -name '*.jsonl' -user tally -perm 600 | grep -q .; then spooled=1; break; fi
    sleep 0.5
done
if [ -n "$spooled" ]; then ok "the batch went to the spool as a file tally:tally 0600"
else bad "no spool file in /var/lib/tally/spool 20 s after ClickHouse went away: $(ls -la /var/lib/tally/spool)"; fi
stop_limit=${stop:-60}
start=$(date +%s)
[ -n "$tally_pid" ] && kill -TERM "$tally_pid"
while kill -0 "$strace_pid" 2>/dev/null && [ $(($(date +%s) - start)) -lt "$stop_limit" ]; do sleep 0.2; done
if kill -0 "$strace_pid" 2>/dev/null; then
    kill -KILL "$tally_pid" "$strace_pid" 2>/dev/null
    bad "tally still running ${stop_limit}s after SIGTERM (TimeoutStopSec would SIGKILL it)"
else
    wait "$strace_pid"
    serve_rc=$?
    if [ "$serve_rc" = 0 ]; then ok "SIGTERM: exit 0 after $(($(date +%s) - start))s (TimeoutStopSec=$stop_limit)"
    else bad "SIGTERM: exit $serve_rc: $(tail -3 "$work/serve-ch.log")"; fi
fi
systemd-analyze syscall-filter >"$work/syscall-filter.txt" 2>/dev/null
sandbox=$(python3 - "$work/strace.log" "$work/syscall-filter.txt" <<'PY'
import re, sys
log, groups_file = sys.argv[1], sys.argv[2]
# systemd's named groups, expanded (a group lists syscalls and other groups).
groups, cur = {}, None
for line in open(groups_file):
    t = line.strip()
    if not t or t.startswith('#'):
        continue
    if not line.startswith(' ') and t.startswith('@'):
        cur = groups.setdefault(t.split()[0], [])
    elif cur is not None:
        cur.append(t.split()[0])
def expand(name, seen=()):
    out = set()
    for m in groups.get(name, []):
        out |= expand(m, seen + (name,)) if m.startswith('@') and m not in seen else {m}
    return out
allowed = expand('@system-service') - expand('@privileged') - expand('@resources')
used, families, wx, writes, forbidden, devs, procs = set(), set(), [], set(), set(), set(), set()
call = re.compile(r'^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)(?:\(| resumed>)(.*)$')
flags_w = re.compile(r'O_WRONLY|O_RDWR|O_CREAT|O_TRUNC')
for line in open(log, errors='replace'):
    m = call.match(line)
    if not m:
        continue
    name, rest = m.groups()
    used.add(name)
    if name == 'socket':
        # (a call strace split in two has its arguments on the first line only)
        family = re.match(r'(AF_[A-Z0-9]+|PF_[A-Z0-9]+)', rest)
        if family:
            families.add(family.group(1))
    if name in ('mmap', 'mprotect', 'pkey_mprotect'):
        if (name != 'mmap' and 'PROT_EXEC' in rest) or ('PROT_WRITE' in rest and 'PROT_EXEC' in rest):
            wx.append(line.strip()[:160])
    paths = re.findall(r'"(/[^"]*)"', rest)
    modifying = name in ('mkdir', 'mkdirat', 'rename', 'renameat', 'renameat2', 'unlink', 'unlinkat',
                         'rmdir', 'link', 'linkat', 'symlink', 'symlinkat', 'chmod', 'fchmodat', 'truncate') \
        or (name in ('open', 'openat', 'creat') and flags_w.search(rest))
    for p in paths:
        if modifying and not (p.startswith('/var/lib/tally/') or p in ('/var/lib/tally', '/dev/null')):
            writes.add(f'{name} {p}')
        if re.match(r'/(home|root|run/user)(/|$)', p):
            forbidden.add(p)
        if p.startswith('/dev/') and p not in ('/dev/null', '/dev/zero', '/dev/full', '/dev/random',
                                               '/dev/urandom', '/dev/tty', '/dev/shm'):
            devs.add(p)
        if p.startswith('/proc/') and not re.match(r'/proc/(self|thread-self|\d+)(/|$)', p):
            procs.add(p)
def show(xs):
    return ', '.join(sorted(xs)[:12]) or 'none'
print(f"syscalls\t{len(used)}\t{show(used - allowed)}")
print(f"families\t{show(families)}\t{show(families - {'AF_INET', 'AF_INET6', 'AF_UNIX'})}")
print(f"wx\t{len(wx)}\t{'; '.join(wx[:3]) or 'none'}")
print(f"writes\t-\t{show(writes)}")
print(f"home\t-\t{show(forbidden)}")
print(f"devices\t-\t{show(devs)}")
print(f"proc\t-\t{show(procs)}")
PY
)
sandbox_field() { printf '%s\n' "$sandbox" | awk -F'\t' -v k="$1" '$1 == k {print $'"$2"'}'; }
if [ -z "$sandbox" ]; then bad "reading the strace log failed"
else
    expect "SystemCallFilter: of $(sandbox_field syscalls 2) system calls made, outside @system-service ~@privileged @resources" "$(sandbox_field syscalls 3)" none
    expect "RestrictAddressFamilies: families used: $(sandbox_field families 2); others" "$(sandbox_field families 3)" none
    expect "MemoryDenyWriteExecute: mappings made writable+executable or executable later" "$(sandbox_field wx 3)" none
    expect "ProtectSystem=strict: paths written outside /var/lib/tally" "$(sandbox_field writes 3)" none
    expect "ProtectHome: paths under /home, /root, /run/user touched" "$(sandbox_field home 3)" none
    expect "PrivateDevices: device nodes opened beyond null/zero/random/urandom" "$(sandbox_field devices 3)" none
    expect "ProcSubset=pid: /proc paths outside the own process" "$(sandbox_field proc 3)" none
fi
scripts/clickhouse.sh stop "$ch_dir" >/dev/null 2>&1
rm -f /var/lib/tally/spool/*.jsonl

# Reinstalling (what an upgrade does) keeps an edited config and its modes, and the user.
echo "# edited by package-test" >>/etc/tally/tally.toml
if timeout 600 dpkg -i "$work/$(basename "$deb")" >"$work/reinstall.log" 2>&1; then
    ok "reinstall with dpkg -i"
else
    bad "reinstall with dpkg -i: $(tail -5 "$work/reinstall.log")"
fi
check "reinstall kept the edited config" grep -q '^# edited by package-test$' /etc/tally/tally.toml
expect "reinstall kept the config's owner and mode" "$(stat_of /etc/tally/tally.toml)" "root:tally 640"
expect "reinstall kept the user" "$(id -u tally 2>&1)" "$uid"

echo "== 5. remove, purge"
runuser -u tally -- sh -c 'umask 077; echo "{}" > /var/lib/tally/spool/00000000000000000001.jsonl'
timeout 300 apt-get remove -y -qq tally >"$work/remove.log" 2>&1 || bad "apt-get remove tally: $(tail -5 "$work/remove.log")"
expect "after remove: dpkg status" "$(dpkg-query -W -f='${Status}' tally 2>&1)" "deinstall ok config-files"
check "after remove: the binary is gone" test ! -e /usr/bin/tally
check "after remove: the spool is kept" test -f /var/lib/tally/spool/00000000000000000001.jsonl
check "after remove: the config is kept" test -f /etc/tally/tally.toml
timeout 300 apt-get purge -y -qq tally >"$work/purge.log" 2>&1 || bad "apt-get purge tally: $(tail -5 "$work/purge.log")"
check "after purge: the package is unknown to dpkg" sh -c '! dpkg-query -W -f="\${Status}" tally 2>/dev/null | grep -q .'
check "after purge: /var/lib/tally is gone" test ! -e /var/lib/tally
check "after purge: /etc/tally is gone" test ! -e /etc/tally
check "after purge: the unit is gone" test ! -e "$unit"
check "after purge: no stat override left" sh -c '! dpkg-statoverride --list /etc/tally/tally.toml'
# The user is kept on purge, as Debian packages do (files elsewhere may carry its uid).
if getent passwd tally >/dev/null; then echo "note: the system user tally is kept after purge (by design)"; fi

finish
