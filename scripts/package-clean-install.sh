#!/usr/bin/env bash
# Installs the built Debian package into a fresh, minimal Debian 12 root (debootstrap
# --variant=minbase, in a chroot) and runs it there: what an operator meets on a clean machine,
# which this development machine, with everything already installed, cannot show. apt inside the
# root fetches what the package depends on (adduser) from the same mirror as this machine.
#
#   scripts/package-clean-install.sh [DEB]     (default: the newest target/debian/tally_*.deb)
#
# The minimal root is made once and kept as .cache/debian12-minbase.tar; each run unpacks a
# fresh copy, so every run is a first install. Checks print "ok - ..." / "FAIL - ..."; the last
# line counts them; the exit status is non-zero when one failed. Needs root and debootstrap.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export PATH="/usr/sbin:/sbin:$PATH"
export DEBIAN_FRONTEND=noninteractive
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
expect() { if [ "$2" = "$3" ]; then ok "$1 ($2)"; else bad "$1: found '$2', expected '$3'"; fi; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; exit; }
abort() { bad "$*"; finish; }

[ "$(id -u)" = 0 ] || { echo "package-clean-install: run as root (chroot)" >&2; exit 2; }
deb=${1:-$(ls -t target/debian/tally_*.deb 2>/dev/null | head -1)}
[ -f "$deb" ] || { echo "package-clean-install: no .deb (run scripts/package.sh first)" >&2; exit 2; }
command -v debootstrap >/dev/null || {
    timeout 300 apt-get update -qq >/dev/null 2>&1
    timeout 600 apt-get install -y -qq debootstrap >/dev/null 2>&1
} || { echo "package-clean-install: apt-get install debootstrap failed" >&2; exit 2; }

# The mirror this machine's apt uses (deb822 sources first, then the one-line format).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || { echo "package-clean-install: no Debian mirror in this machine's apt sources" >&2; exit 2; }

base="$repo/.cache/debian12-minbase.tar"
mkdir -p "$repo/.cache"
if [ ! -s "$base" ]; then
    echo "package-clean-install: making a minimal Debian 12 root (once; kept as $base)"
    tmp=$(mktemp -d "$repo/.cache/debootstrap.XXXXXX")
    if ! timeout 1200 debootstrap --variant=minbase bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1; then
        tail -5 "$tmp.log" >&2
        rm -rf "$tmp" "$tmp.log"
        echo "package-clean-install: debootstrap failed" >&2
        exit 2
    fi
    tar -C "$tmp" -cf "$base.part" . && mv "$base.part" "$base"
    rm -rf "$tmp" "$tmp.log"
fi

root=$(mktemp -d /tmp/tally-clean-root.XXXXXX)
cleanup() {
    umount "$root/proc" 2>/dev/null
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT
tar -C "$root" -xf "$base" || abort "unpacking $base"
# mktemp makes folders 0700 and tar restores that on the root's "/": a clean machine's "/" is
# 0755, and the service user must be able to reach /usr/bin/tally.
chmod 0755 "$root"
mount -t proc proc "$root/proc" || abort "mounting /proc in the root"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"
# Every command in the root is bounded (the slowest, apt-get install, fetches from the mirror).
in_root() { timeout 900 chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

expect "a clean root: Debian release" "$(cut -d. -f1 "$root/etc/debian_version")" 12
expect "a clean root: no user tally before" "$(in_root getent passwd tally || echo none)" none

in_root apt-get update -qq >"$root/tmp/update.log" 2>&1 || abort "apt-get update in the root: $(tail -3 "$root/tmp/update.log")"
if in_root apt-get install -y -q "/tmp/$(basename "$deb")" >"$root/tmp/install.log" 2>&1; then
    new=$(awk '/NEW packages will be installed/ {on = 1; next} on && /^  / {printf "%s", $0; next} {on = 0}' "$root/tmp/install.log" | xargs)
    ok "apt-get install ./$(basename "$deb") in a clean Debian 12 root; new packages: $new"
else
    tail -15 "$root/tmp/install.log"
    abort "apt-get install in the clean root"
fi
expect "dpkg status" "$(in_root dpkg-query -W -f='${Status}' tally)" "install ok installed"
expect "adduser (a dependency)" "$(in_root dpkg-query -W -f='${Status}' adduser)" "install ok installed"
expect "tally on the PATH" "$(in_root sh -c 'command -v tally')" /usr/bin/tally
expect "the user tally" "$(in_root id -nG tally 2>&1)" tally
expect "/etc/tally/tally.toml" "$(in_root stat -c '%U:%G %a' /etc/tally/tally.toml)" "root:tally 640"
expect "/var/lib/tally/spool" "$(in_root stat -c '%U:%G %a' /var/lib/tally/spool)" "tally:tally 700"
if out=$(in_root runuser -u tally -- tally check-config /etc/tally/tally.toml 2>&1); then
    ok "runuser -u tally -- tally check-config /etc/tally/tally.toml: $(printf '%s\n' "$out" | tail -1)"
else
    bad "check-config in the clean root: $(printf '%s\n' "$out" | tail -3)"
fi
expect "libraries the binary needs, all found" \
    "$(in_root ldd /usr/bin/tally 2>&1 | grep -c 'not found')" 0
in_root apt-get purge -y -qq tally >"$root/tmp/purge.log" 2>&1 || bad "apt-get purge: $(tail -3 "$root/tmp/purge.log")"
expect "after purge: /etc/tally and /var/lib/tally" \
    "$(in_root sh -c 'ls -d /etc/tally /var/lib/tally 2>/dev/null' | tr '\n' ' ')" ""

finish
