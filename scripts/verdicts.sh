#!/usr/bin/env bash
# Regenerates the tables of docs/verdicts.md: builds and runs the `ramp-verdicts` Monte Carlo
# comparison (Flagger-style threshold checks, Kayenta-style fixed-horizon tests and Ramp's
# sequential tests on the staging report's stage-1 traffic) and replaces everything between the
# `<!-- verdicts:begin -->` and `<!-- verdicts:end -->` markers with its output. Flags are
# passed through (`--runs N`, `--regression-runs M`, `--seed S`, `--minutes MIN`,
# `--threads T`); without flags it runs the defaults the document quotes.
#
#   scripts/verdicts.sh [FLAGS]
#
# The output depends only on the flags, never on the machine or the number of threads, so
# re-running it leaves the document unchanged unless the statistics changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
doc=docs/verdicts.md
cargo build --release -q -p ramp-verdicts
bin="${CARGO_TARGET_DIR:-target}/release/ramp-verdicts"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s)
"$bin" "$@" >"$out"
end=$(date +%s)
echo "ramp-verdicts: $((end - start)) s wall time" >&2
# The markers must stand alone on their lines; the prose may mention them.
if ! grep -qx '<!-- verdicts:begin -->' "$doc" || ! grep -qx '<!-- verdicts:end -->' "$doc"; then
  echo "$doc has no verdicts markers; the tables are:" >&2
  cat "$out"
  exit 1
fi
awk -v table="$out" '
  $0 == "<!-- verdicts:begin -->" { print; while ((getline line < table) > 0) print line; skip = 1; next }
  $0 == "<!-- verdicts:end -->" { skip = 0 }
  !skip { print }
' "$doc" >"$doc.tmp"
mv "$doc.tmp" "$doc"
echo "updated $doc" >&2
