#!/usr/bin/env bash
# The main job: simulate the seed's 48-hour staging canary on the embedded default (no
# servers), print the monitoring panels, and write the report and JSON summary to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -q -p ramp
mkdir -p out
set +e
./target/release/ramp simulate examples/phase8-staging.toml --seed 1 \
  --report out/phase8-staging-report.md --json out/phase8-staging-summary.json
code=$?
set -e
echo
echo "report:  out/phase8-staging-report.md"
echo "summary: out/phase8-staging-summary.json"
exit $code
