#!/usr/bin/env bash
# Regenerates the HTML report's screenshot in docs/ from the staging example (seed 1): the
# report from its top (header, executive summary, the gates, the weight over the rollout)
# through stage 1's charts. (Headless Chromium ignores a #fragment when it takes a
# screenshot, so the one picture is tall rather than two pictures of parts.)
# Needs chromium (scripts/bootstrap.sh installs it). The report is deterministic, so the
# screenshots change only when the report or the browser does.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  echo "screenshots: no chromium; run scripts/bootstrap.sh first" >&2
  exit 1
fi
cargo build --profile quick --locked -p ramp
mkdir -p out
report="$PWD/out/phase8-staging-report.html"
set +e
./target/quick/ramp simulate examples/phase8-staging.toml --seed 1 --quiet --report "$report"
code=$?
set -e
if [ "$code" -ne 0 ]; then
  echo "screenshots: ramp simulate exited $code" >&2
  exit 1
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --user-data-dir="$profile" --window-size=900,4300 \
  --screenshot=docs/report-html.png "file://$report" 2>/dev/null
echo "screenshots: wrote docs/report-html.png"
