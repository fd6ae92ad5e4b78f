# Sourced by scripts/test.sh and scripts/demo.sh (not run on its own): `ensure_cargo` makes a
# cargo >= 1.89 available in this shell, so that the two commands work on a machine that has
# nothing but Debian 12 and root (or sudo).
#
#   ensure_cargo          cargo and rustc
#   ensure_cargo --lint   also `cargo fmt` and `cargo clippy` (scripts/test.sh)
#
# - A cargo on PATH, or rustup's in ~/.cargo/bin, that is new enough is used as it is.
# - rustup's cargo that is too old (or lacks rustfmt/clippy) is left alone and the message says
#   what to run: Debian's toolchain would be shadowed by it on PATH, and its packages conflict
#   with Debian's rustup package.
# - Otherwise (no cargo, or Debian's own older rustc/cargo packages) Debian 12's current
#   toolchain is installed from Debian's archive with apt-get: rustc-web, cargo-web, rustfmt-web,
#   rust-web-clippy (1.96, in bookworm-security; they replace the older rustc/cargo packages and
#   put cargo, rustc, cargo-fmt and cargo-clippy in /usr/bin).

TALLY_MIN_CARGO=1.89
TALLY_DEBIAN_RUST=(rustc-web cargo-web rustfmt-web rust-web-clippy)

# The version of `cargo` (x.y.z), or nothing when it does not run.
_cargo_version() { cargo --version 2>/dev/null | awk '{print $2}'; }

# Whether version $1 is at least TALLY_MIN_CARGO.
_new_enough() {
  [[ -n "$1" ]] && [[ "$(printf '%s\n%s\n' "$TALLY_MIN_CARGO" "$1" | sort -V | head -n1)" == "$TALLY_MIN_CARGO" ]]
}

# Whether the cargo on PATH is rustup's (its proxy, or anything under ~/.cargo/bin).
_rustup_cargo() {
  local c
  c=$(command -v cargo) || return 1
  [[ "$c" == "$HOME/.cargo/bin/"* ]] || command -v rustup >/dev/null
}

_lint_tools() { cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; }

_apt_install() {
  local sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "installing Debian's Rust toolchain: $*" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@" >/dev/null
  hash -r
}

ensure_cargo() {
  local lint=
  [[ "${1:-}" == --lint ]] && lint=1
  # rustup installs into ~/.cargo/bin, which a fresh (non-login) shell may not have on PATH.
  if [[ -x "$HOME/.cargo/bin/cargo" && ":$PATH:" != *":$HOME/.cargo/bin:"* ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  local version
  version=$(_cargo_version)
  if _new_enough "$version" && { [[ -z "$lint" ]] || _lint_tools; }; then
    return 0
  fi
  if _rustup_cargo; then
    if ! _new_enough "$version"; then
      echo "rustup's cargo (${version:-no default toolchain}) is older than $TALLY_MIN_CARGO: run" \
        "'rustup update stable && rustup default stable'" >&2
    else
      echo "cargo fmt / cargo clippy are missing: run 'rustup component add rustfmt clippy'" >&2
    fi
    return 1
  fi
  if command -v dpkg >/dev/null && command -v apt-get >/dev/null; then
    _apt_install "${TALLY_DEBIAN_RUST[@]}"
    version=$(_cargo_version)
  fi
  if ! _new_enough "$version"; then
    echo "no cargo >= $TALLY_MIN_CARGO (found: ${version:-none}). On Debian 12 it comes from the" \
      "security archive (bookworm-security, which Debian enables by default): enable it in the apt" \
      "sources and run this again, or install Rust with rustup" >&2
    return 1
  fi
  if [[ -n "$lint" ]] && ! _lint_tools; then
    echo "cargo fmt / cargo clippy still missing after installing ${TALLY_DEBIAN_RUST[*]}" >&2
    return 1
  fi
  echo "using $(cargo --version) from $(command -v cargo)" >&2
}
