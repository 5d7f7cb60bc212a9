#!/usr/bin/env bash
# Installs what building Ramp needs on a fresh Debian/Ubuntu machine, idempotently: a C
# compiler (SQLite is built from source), curl (for rustup), python3 (the test scripts),
# prometheus and promtool 2.42 (the Prometheus integration's tests), haproxy 2.6 and
# nginx 1.22 (the router tests), chromium (the HTML report's browser tests and
# scripts/screenshots.sh), etcd 3.4 and protoc (the highly available controllers), and
# a Rust toolchain at least as new as the workspace's `rust-version`, with clippy and
# rustfmt. Safe to run again: when everything is there it prints one line and changes nothing.
#
# System packages need root: it runs apt-get directly as root, through sudo otherwise, and
# stops with one sentence saying what to install when it can do neither. The Rust toolchain
# goes to ~/.cargo through rustup, as the user running this.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

# The one minimum Rust version, declared once in the workspace's Cargo.toml.
need="$(sed -n 's/^rust-version = "\([0-9.]*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)"
if [ -z "$need" ]; then
  echo "bootstrap: no rust-version in $ROOT/Cargo.toml; cannot tell which Rust is needed" >&2
  exit 1
fi

# Runs a command as root: directly, or through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    return 1
  fi
}

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v curl >/dev/null 2>&1 || need_apt+=(curl ca-certificates)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# Prometheus and promtool: the tests of Ramp's Prometheus integration run the real server
# and linter. Pinned to Debian bookworm's build; any installed 2.42.x is accepted.
PROMETHEUS_PIN="2.42.0+ds-5+deb12u1"
if ! { command -v promtool >/dev/null 2>&1 && prometheus --version 2>/dev/null | grep -q 'version 2\.42\.'; }; then
  need_apt+=("prometheus=$PROMETHEUS_PIN")
fi
# HAProxy and nginx: the router tests drive the real ones. Pinned to Debian bookworm's
# builds; any installed 2.6.x HAProxy and 1.22.x nginx are accepted.
HAPROXY_PIN="2.6.12-1+deb12u4"
NGINX_PIN="1.22.1-9+deb12u12"
if ! /usr/sbin/haproxy -v 2>/dev/null | grep -q 'version 2\.6\.'; then
  need_apt+=("haproxy=$HAPROXY_PIN")
fi
if ! /usr/sbin/nginx -v 2>&1 | grep -q 'nginx/1\.22\.'; then
  need_apt+=("nginx-light=$NGINX_PIN")
fi
# Chromium: the HTML report's tests load the report in a real headless browser. Pinned to
# Debian bookworm's security build the tests were written against; any installed chromium
# is accepted.
CHROMIUM_PIN="156.0.8078.129-1~deb12u1"
if ! command -v chromium >/dev/null 2>&1; then
  need_apt+=("chromium=$CHROMIUM_PIN")
fi
# etcd 3.4: the highly available controllers' tests start a real three-member cluster
# (etcd-server) and check members with etcdctl (etcd-client). protoc (protobuf-compiler)
# compiles etcd's protocol files when the etcd client crate builds. Pinned to Debian
# bookworm's builds; any installed etcd 3.4.x and protoc are accepted.
ETCD_PIN="3.4.23-4+b4"
PROTOC_PIN="3.21.12-3+deb12u1"
if ! etcd --version 2>/dev/null | grep -q 'etcd Version: 3\.4\.'; then
  need_apt+=("etcd-server=$ETCD_PIN")
fi
if ! command -v etcdctl >/dev/null 2>&1; then
  need_apt+=("etcd-client=$ETCD_PIN")
fi
if ! command -v protoc >/dev/null 2>&1; then
  need_apt+=("protobuf-compiler=$PROTOC_PIN")
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need_apt[*]} with apt-get" >&2
  if ! { as_root apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"; }; then
    echo "bootstrap: could not install ${need_apt[*]}: run this as root or with sudo, or install them yourself (apt-get install ${need_apt[*]}) and run it again" >&2
    exit 1
  fi
fi

# rustup's toolchains come first ($CARGO_HOME/bin, where rustup installs them): a
# distribution's older cargo (Debian 12 ships 1.63) must not shadow them.
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"

# Prints the major.minor of the active rustc, or nothing.
rust_version() {
  # No rustc, or rustup without a default toolchain, is an empty answer, not a failure.
  { rustc --version 2>/dev/null || true; } | sed -n 's/^rustc \([0-9]*\.[0-9]*\).*/\1/p'
}

# True when version $1 is at least $2 (both major.minor or major.minor.patch).
at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -t. -k1,1n -k2,2n -k3,3n | head -n 1)" = "$2" ]
}

have="$(rust_version)"
if [ -z "$have" ] || ! at_least "$have" "$need"; then
  if ! command -v rustup >/dev/null 2>&1; then
    echo "bootstrap: ${have:+rustc $have is older than $need; }installing the Rust toolchain with rustup into ${CARGO_HOME:-~/.cargo}" >&2
    if ! curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
      sh -s -- -y --profile minimal --default-toolchain stable -c clippy,rustfmt; then
      echo "bootstrap: could not install Rust with rustup (is https://sh.rustup.rs reachable?); install Rust $need or newer yourself (https://rustup.rs) and run this again" >&2
      exit 1
    fi
  else
    echo "bootstrap: rustc ${have:-(none)} is older than $need; installing the stable toolchain with rustup" >&2
    rustup toolchain install stable --profile minimal -c clippy,rustfmt
    # Only this checkout is switched, not the user's default toolchain.
    rustup override set stable --path "$ROOT" >/dev/null
  fi
  hash -r
  have="$(rust_version)"
fi
if [ -z "$have" ] || ! at_least "$have" "$need"; then
  echo "bootstrap: Ramp needs Rust $need or newer, and the active rustc is ${have:-missing}; install it with rustup (https://rustup.rs) and run this again" >&2
  exit 1
fi

# clippy and rustfmt: the test suite runs both.
missing=()
cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v rustup >/dev/null 2>&1; then
    echo "bootstrap: adding the toolchain components ${missing[*]}" >&2
    rustup component add "${missing[@]}"
  else
    echo "bootstrap: cargo has no ${missing[*]}; install them (apt-get install rust-clippy rustfmt, or use rustup) and run this again" >&2
    exit 1
  fi
fi
echo "bootstrap: rustc $have (Ramp needs $need or newer) with clippy and rustfmt, a C compiler, python3, prometheus 2.42, haproxy 2.6, nginx 1.22, chromium, etcd 3.4 and protoc: ready"
