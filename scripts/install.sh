#!/usr/bin/env bash
# Puts a built `ramp` on the PATH, with its manual pages and bash completion, for the current
# user (no root needed). Idempotent: running it again replaces the files.
#
# Usage: scripts/install.sh [BINARY]   (default: target/quick/ramp)
#
# The binary goes to the directory cargo installs binaries into ($CARGO_HOME/bin, normally
# ~/.cargo/bin: on the PATH wherever cargo is), the manual pages beside it in
# ~/.cargo/share/man/man1 (man-db looks in ../share/man of every PATH directory, so
# `man ramp` and `man ramp-simulate` find them) and the bash completion to
# ~/.local/share/bash-completion/completions/ramp.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/quick/ramp}"
if [ ! -x "$bin" ]; then
  echo "install: $bin is not built; run: cargo build --profile quick -p ramp" >&2
  exit 1
fi
home="${CARGO_HOME:-$HOME/.cargo}"
dest="$home/bin"
mkdir -p "$dest"
# A copy, not a link: it keeps working after `cargo clean` and while the tree is rebuilt.
install -m 0755 "$bin" "$dest/ramp.new"
mv -f "$dest/ramp.new" "$dest/ramp"
"$dest/ramp" man --dir "$home/share/man/man1" 2>/dev/null || true
data="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$data/bash-completion/completions"
"$dest/ramp" completions bash >"$data/bash-completion/completions/ramp" || true
found="$(PATH="${RAMP_USER_PATH:-$PATH}" command -v ramp || true)"
if [ "$found" = "$dest/ramp" ]; then
  echo "== installed: ramp is $dest/ramp ($("$dest/ramp" --version))"
else
  echo "== installed $dest/ramp; to run it by name in this shell: export PATH=\"$dest:\$PATH\""
  echo "   (new shells that load ~/.cargo/env have it already)"
fi
