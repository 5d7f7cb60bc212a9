#!/usr/bin/env bash
# The staging report's rollback rehearsal on live traffic ("Simulated P95 breach": +800 ms on 50% of
# canary requests, canary at 50%, 125 req/s of open-loop load), run N times with
# `ramp demo --rehearse` on loopback. Prints the recovery breakdown's medians as a Markdown
# table for docs/benchmarks.md.
#
#   scripts/bench-rehearse.sh [RUNS]     (default 5; each run takes about 20 s)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"
case "${1:-}" in -h | --help) bench_usage "$0"; exit 0 ;; esac
runs=${1:-5}
bench_uint RUNS "$runs"
bench_build_release -p ramp
bin="$(bench_target_dir)/release/ramp"
bench_work_dir ramp-bench-rehearse
tmp="$BENCH_WORK"
for i in $(seq 1 "$runs"); do
  "$bin" demo --rehearse -q --journal "$tmp/j.db" --json "$tmp/run$i.json" >/dev/null || true
done
python3 - "$tmp" "$runs" <<'PY'
import json, statistics, sys
tmp, runs = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(1, runs + 1):
    try:
        r = json.load(open(f"{tmp}/run{i}.json"))["rehearsals"][0]
    except (OSError, KeyError, IndexError, ValueError):
        continue
    rows.append(r)
ok = [r for r in rows if r["outcome"] == "rolled_back"]
def med(f):
    v = [f(r) for r in ok]
    return statistics.median(v) if v else float("nan")
def rng(f):
    v = [f(r) for r in ok]
    return f"{min(v):.1f}–{max(v):.1f}" if v else "n/a"
steps = [
    ("Detection to initiation", lambda r: r["initiated_s"] - r["fault_onset_s"]),
    ("Rollback execution (weight 0 applied, canary drained)", lambda r: r["rollback_s"] - r["initiated_s"]),
    ("Baseline restoration", lambda r: r["restoration_s"] - r["rollback_s"]),
    ("Total recovery", lambda r: r["total_recovery_s"]),
]
print(f"Runs: {len(rows)} of {runs} produced a summary; {len(ok)} rolled back and restored.\n")
print("| Step | Median | Range | Seed (simulated staging) |")
print("|------|--------|-------|--------------------------|")
seed = ["2 s", "6 s", "10 s", "18 s"]
for (name, f), s in zip(steps, seed):
    print(f"| {name} | {med(f):.1f} s | {rng(f)} s | {s} |")
PY
