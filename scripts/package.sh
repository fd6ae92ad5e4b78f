#!/usr/bin/env bash
# Builds the Debian package: target/debian/tally_<version>-1_<arch>.deb, and the debug symbols
# as tally-dbgsym_<version>-1_<arch>.ddeb beside it. Installs what is missing first: Rust
# (Debian's rustc-web/cargo-web where no cargo is found), binutils (strip, objcopy) and
# cargo-deb 3.8 (cargo install). The unit, default config and maintainer scripts are in
# packaging/, the package's metadata in Cargo.toml ([package.metadata.deb]).
#
#   scripts/package.sh            build; the last line printed is the .deb's path
#   scripts/package.sh --fast     faster, larger compression (for tests)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cargo_deb_version=3.8.0

fail() { echo "package.sh: $*" >&2; exit 1; }

apt_install() {
    [ "$(id -u)" = 0 ] || fail "$* missing and not root: install it (apt-get install $*)"
    apt-get update -qq >/dev/null || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || fail "apt-get install $* failed"
}

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
    echo "package.sh: no cargo; installing Debian's rustc-web and cargo-web" >&2
    apt_install rustc-web cargo-web
fi
command -v objcopy >/dev/null && command -v strip >/dev/null || apt_install binutils

# cargo-deb: exactly the version this packaging was written and tested with.
have=$(cargo deb --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$cargo_deb_version" ]; then
    echo "package.sh: installing cargo-deb $cargo_deb_version (found: ${have:-none})" >&2
    cargo install cargo-deb --version "=$cargo_deb_version" --locked --quiet \
        || fail "cargo install cargo-deb $cargo_deb_version failed"
fi

compress=()
[ "${1:-}" = --fast ] && compress=(--fast)

# --locked: the package is built from exactly the dependency versions in Cargo.lock.
# --dbgsym: the binary is stripped; its debug info goes into a separate .ddeb.
cargo deb --locked --dbgsym "${compress[@]}" --output target/debian/ \
    || fail "cargo deb failed"

version=$(cargo metadata --no-deps --format-version 1 --locked \
    | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "tally"))')
arch=$(dpkg --print-architecture)
deb="target/debian/tally_${version}-1_${arch}.deb"
[ -f "$deb" ] || fail "cargo deb ran but $deb is not there"
echo "$repo/$deb"
