#!/usr/bin/env bash
# Benchmark of `ramp simulate` on the staging report's staging plan: wall time (median of N runs) and
# peak resident memory, pinned to one core. Prints a Markdown table for docs/benchmarks.md.
#
#   scripts/bench-sim.sh [RUNS]     (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -q -p ramp
bin=./target/release/ramp
plan=examples/phase8-staging.toml
if [ ! -x /usr/bin/time ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq time
fi
pin=""
command -v taskset >/dev/null 2>&1 && pin="taskset -c 0"
times=()
rss=()
for i in $(seq 1 "$runs"); do
  out=$( { $pin /usr/bin/time -f '%e %M' "$bin" simulate "$plan" --seed "$i" -q >/dev/null; } 2>&1 | tail -1 ) || true
  times+=("$(echo "$out" | cut -d' ' -f1)")
  rss+=("$(echo "$out" | cut -d' ' -f2)")
done
requests=$("$bin" simulate "$plan" --seed 1 -q | sed -n 's/.*run, \([0-9,]*\) requests.*/\1/p')
python3 - "$requests" "${times[@]}" -- "${rss[@]}" <<'PY'
import statistics, sys
args = sys.argv[1:]
requests = args[0]
sep = args.index("--")
t = [float(x) for x in args[1:sep]]
m = [int(x) for x in args[sep + 1:]]
print("| What | Value |")
print("|------|-------|")
print(f"| Runs (seeds 1..{len(t)}) | {len(t)} |")
print(f"| Simulated requests (seed 1) | {requests} |")
print(f"| Wall time, median | {statistics.median(t):.2f} s |")
print(f"| Wall time, min / max | {min(t):.2f} s / {max(t):.2f} s |")
print(f"| Peak RSS, max over runs | {max(m) / 1024:.1f} MiB |")
PY
