#!/usr/bin/env bash
# Installs the real OpenFeature Python clients that ramp-flags' OFREP server is tested against.
#
# It creates (once) a virtual environment at target/pyclients and installs the OpenFeature
# Python SDK and its OFREP provider from PyPI into it, at the versions pinned in
# scripts/python-requirements.txt. Running it again is cheap: when the venv already holds
# exactly those versions, it only says so. The Rust test `python_ofrep_client` in
# crates/ramp-flags/tests runs crates/ramp-flags/tests/py/ofrep_client.py with
# target/pyclients/bin/python; under CI it fails when that interpreter is missing.
#
# Usage: scripts/python-clients.sh
# Needs python3 with the venv module; on Debian, python3-venv is installed with apt-get when it
# is missing and this runs as root (or with sudo that needs no password).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/target/pyclients"
PY="$VENV/bin/python"
# The packages the test imports, the SDK (`openfeature`) and the provider
# (`openfeature.contrib.provider.ofrep`), with their dependencies, pinned.
REQUIREMENTS="$ROOT/scripts/python-requirements.txt"
# The pins as `pip freeze` prints them, to compare with what the venv holds.
wanted() { grep -v '^\s*#' "$REQUIREMENTS" | grep -v '^\s*$' | tr 'A-Z_' 'a-z-' | sort; }

if ! command -v python3 >/dev/null 2>&1; then
  echo "python-clients: python3 is not installed; install it (apt-get install -y python3) and rerun" >&2
  exit 1
fi

# Runs a command as root: directly when we are root, through sudo when it needs no password.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}

# A venv that holds exactly the pinned versions needs nothing more.
if [ -x "$PY" ] && [ "$("$PY" -m pip --disable-pip-version-check freeze 2>/dev/null | tr 'A-Z_' 'a-z-' | sort)" = "$(wanted)" ]; then
  echo "python-clients: $VENV is ready ($("$PY" -m pip --disable-pip-version-check list 2>/dev/null | grep -i '^openfeature' | tr -s ' ' | paste -sd ';' -))"
  exit 0
fi

# Debian's python3 ships without ensurepip unless python3-venv is installed.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "python-clients: the venv module is missing; installing python3-venv" >&2
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; then
    as_root apt-get update -qq || true
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; then
      echo "python-clients: cannot install python3-venv (need root or passwordless sudo)" >&2
      exit 1
    fi
  fi
fi

# Anything else (no venv, a half-made one, other versions) is rebuilt from scratch, so that
# the venv holds the pins and nothing more.
rm -rf "$VENV"
mkdir -p "$ROOT/target"
python3 -m venv "$VENV"

"$PY" -m pip install --disable-pip-version-check --quiet --no-deps -r "$REQUIREMENTS"
"$PY" -m pip check >&2 || {
  echo "python-clients: the pins in scripts/python-requirements.txt are inconsistent (see above)" >&2
  exit 1
}
"$PY" -c 'import openfeature.api, openfeature.contrib.provider.ofrep'
echo "python-clients: installed into $VENV: $("$PY" -m pip --disable-pip-version-check list 2>/dev/null | grep -i '^openfeature' | tr -s ' ' | paste -sd ';' -)"
