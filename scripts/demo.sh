#!/usr/bin/env bash
# The main job: simulate the 31-hour staging canary of examples/phase8-staging.toml on the
# embedded default (no servers), print the monitoring panels, and write the report and JSON
# summary to out/. On the way it installs what building needs, builds Ramp (the quick
# profile: about 75 seconds on 2 cores the first time, seconds after) and puts `ramp` on
# your PATH (scripts/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The caller's PATH, so that install.sh can tell whether `ramp` will be found by name.
export RAMP_USER_PATH="$PATH"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
started=$(date +%s)
echo "== building ramp (cargo's progress below; about 75 seconds on 2 cores the first time)"
cargo build --profile quick --locked -p ramp
echo "== built in $(( $(date +%s) - started )) s"
# The test suite runs this script too, and must not replace the user's installed ramp.
if [ -z "${RAMP_NO_INSTALL:-}" ]; then
  bash scripts/install.sh target/quick/ramp
fi
mkdir -p out
echo "== simulating examples/phase8-staging.toml (seed 1): four stages over 31 hours of plan time"
set +e
./target/quick/ramp simulate examples/phase8-staging.toml --seed 1 \
  --report out/phase8-staging-report.md --json out/phase8-staging-summary.json
code=$?
set -e
echo
echo "report:  out/phase8-staging-report.md"
echo "summary: out/phase8-staging-summary.json"
exit $code
