#!/usr/bin/env bash
# Regenerates the screenshots in docs/: the HTML report from the staging example (seed 1): the
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

# The live dashboard during `ramp demo --break`, 17 s in: stage 2 at 25 %, before the
# canary's regression (the demo breaks it at T+22 s, and rolls back a few seconds later, when
# the demo ends). The demo's numbers are live, so this picture changes from run to run.
demo_out="$(mktemp)"
trap 'rm -rf "$profile" "$demo_out"; [ -n "${demo_pid:-}" ] && kill "$demo_pid" 2>/dev/null || true' EXIT
./target/quick/ramp demo --break --journal "$profile/demo.db" >"$demo_out" 2>&1 &
demo_pid=$!
url=""
for _ in $(seq 1 50); do
  url=$(sed -n 's/^Dashboard: \(http[^ ]*\).*/\1/p' "$demo_out")
  [ -n "$url" ] && break
  sleep 0.2
done
if [ -z "$url" ]; then
  echo "screenshots: the demo printed no dashboard address" >&2
  exit 1
fi
sleep 17
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --user-data-dir="$profile/dashboard-profile" --window-size=1100,1450 \
  --virtual-time-budget=3000 --screenshot=docs/dashboard.png "$url" 2>/dev/null
kill "$demo_pid" 2>/dev/null || true
echo "screenshots: wrote docs/dashboard.png"
