#!/usr/bin/env bash
# The full test suite, as CI runs it: set-up, formatting, lints, every test (built in the
# quick profile), the main job end to end, and scripts/install.sh into a scratch home (the
# user's own installed ramp is left alone). Idempotent; needs nothing installed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The real OpenFeature Python clients the OFREP server is tested against (a venv in target/).
bash scripts/python-clients.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TERM_COLOR=never
# The suite builds some forty test binaries in the quick profile (Cargo.toml): the simulation's
# crates optimised, the rest not, no link-time optimisation. The tests do not measure speed;
# benchmarks use the release profile through their own scripts.
started=$(date +%s)

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test --profile quick"
cargo build --profile quick --locked -p ramp
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --profile quick 2>&1 | tee "$log"
passed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
echo "== main job"
RAMP_NO_INSTALL=1 bash scripts/demo.sh >/dev/null
echo "== install.sh into a scratch home"
scratch=$(mktemp -d)
CARGO_HOME="$scratch/cargo" XDG_DATA_HOME="$scratch/data" bash scripts/install.sh target/quick/ramp
"$scratch/cargo/bin/ramp" --version
test -s "$scratch/cargo/share/man/man1/ramp-simulate.1"
grep -q "complete -F" "$scratch/data/bash-completion/completions/ramp"
rm -rf "$scratch"
python3 - <<'PY'
import json
s = json.load(open("out/phase8-staging-summary.json"))
assert s["outcome"] == "promoted_with_caveats", s["outcome"]
print("main job: outcome", s["outcome"], "- rehearsal recovery", s["rehearsals"][0]["total_recovery_s"], "s")
PY
echo "== the whole suite took $(( $(date +%s) - started )) s"
echo "tests: $passed passed, $failed failed"
