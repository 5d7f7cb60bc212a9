#!/usr/bin/env bash
# Benchmark of `ramp simulate`, release build: wall time per run and peak resident memory of
# each sampler side by side, one core pinned (taskset -c 1), on
#   - the staging report's staging plan (examples/phase8-staging.toml, 125 req/s, 31 h),
#   - its production plan (examples/phase8-production.toml, 50 h) at 125, 2,500 and 50,000
#     req/s (the plan's rps replaced, and its service throughput floor with it: 40 % of the
#     rate, as the plan's 100 of 250),
# and a Monte Carlo study of the staging plan (--runs) on every core. Prints Markdown for
# docs/benchmarks.md: medians, ranges, ratios, and the commands. Runs of the two samplers
# alternate (aggregated first on odd rounds, per request first on even ones), so that a drift
# in the machine's speed hits both alike.
#
#   scripts/bench-sim.sh [--runs N] [--study-runs M] [--request-up-to RPS] [--study-request]
#
#   --runs N            runs per case and sampler (default 5)
#   --study-runs M      runs of the study (default 1000; 0 skips it)
#   --request-up-to R   run the per-request sampler only on cases of at most R req/s
#                       (default 2500: at 50,000 req/s it draws 9 billion requests, about a
#                       quarter of an hour per run); cases above are marked "not run"
#   --study-request     also time the study with the per-request sampler
#
# RAMP_BIN=path/to/ramp measures that binary instead of building the release one (to compare
# two builds; the figures in docs/benchmarks.md are the release build's).
#
# The figures mean something only on a quiet machine: check `uptime` first (load average
# well under 1 on the pinned core).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"
runs=5
study_runs=1000
request_up_to=2500
study_request=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --study-runs) study_runs=$2; shift 2 ;;
    --request-up-to) request_up_to=$2; shift 2 ;;
    --study-request) study_request=1; shift ;;
    -h | --help) bench_usage "$0"; exit 0 ;;
    *) echo "bench-sim.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
bench_uint --runs "$runs"
bench_uint --study-runs "$study_runs"
bench_uint --request-up-to "$request_up_to"
if [ -n "${RAMP_BIN:-}" ]; then
  bin=$RAMP_BIN
else
  bench_build_release -p ramp
  bin="$(bench_target_dir)/release/ramp"
fi
if [ ! -x /usr/bin/time ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq time
fi
pin="$(bench_pin 1)"
bench_work_dir ramp-bench-sim
work="$BENCH_WORK"

# The production plan at another rate, its throughput floor scaled with it.
production_at() {
  local rps=$1 out="$work/production-$1.toml"
  local floor
  floor=$(python3 -c "print(f'{$rps * 0.4:g}')")
  sed -e "s/^rps = 250$/rps = $rps/" \
      -e "s/throughput_rps = { min = 100, scope = \"service\" }/throughput_rps = { min = $floor, scope = \"service\" }/" \
      examples/phase8-production.toml >"$out"
  grep -q "^rps = $rps$" "$out" || { echo "bench-sim.sh: could not set rps in the production plan" >&2; exit 1; }
  echo "$out"
}

# The staging plan without its [next] section: a single run of it would also simulate the
# production plan that follows, for the report's preview, and time both.
staging="$work/staging.toml"
sed -e '/^\[next\]$/,/^plan = /d' examples/phase8-staging.toml >"$staging"
if grep -q '^\[next\]' "$staging"; then
  echo "bench-sim.sh: could not take [next] out of the staging plan" >&2
  exit 1
fi

cases=("staging-125|125|$staging")
for rps in 125 2500 50000; do
  cases+=("production-$rps|$rps|$(production_at "$rps")")
done

# One timed run: prints "seconds peak_kib"; the exit code of ramp (3 for a rollback) is not
# a failure of the benchmark.
timed() {
  { $pin /usr/bin/time -f '%e %M' "$bin" simulate "$@" -q >/dev/null || true; } 2>&1 | tail -1
}

results="$work/results.txt"
: >"$results"
for c in "${cases[@]}"; do
  IFS='|' read -r name rps plan <<<"$c"
  samplers=(aggregated)
  if [ "$rps" -le "$request_up_to" ]; then samplers+=(request); fi
  for i in $(seq 1 "$runs"); do
    order=("${samplers[@]}")
    if [ $((i % 2)) -eq 0 ] && [ ${#samplers[@]} -eq 2 ]; then order=(request aggregated); fi
    for s in "${order[@]}"; do
      echo "$name $rps $s $i $(timed "$plan" --seed "$i" --sampler "$s")" >>"$results"
    done
  done
  for s in "${samplers[@]}"; do
    requests=$( { "$bin" simulate "$plan" --seed 1 --sampler "$s" -q || true; } | sed -n 's/.*run, \([0-9,]*\) requests.*/\1/p')
    echo "$name $rps $s requests $requests" >>"$results"
  done
done

study_line=""
if [ "$study_runs" -gt 0 ]; then
  study_samplers=(aggregated)
  if [ "$study_request" -eq 1 ]; then study_samplers+=(request); fi
  for s in "${study_samplers[@]}"; do
    out=$( { /usr/bin/time -f '%e %M' "$bin" simulate examples/phase8-staging.toml --runs "$study_runs" --sampler "$s" -q --json "$work/study-$s.json" >/dev/null || true; } 2>&1 | tail -1 )
    rate=$(python3 -c "import json;s=json.load(open('$work/study-$s.json'));p=s['unfaulted_rollbacks'];print(f\"{p['count']} of {p['runs']}, 95% interval {p['low']*100:.2f}-{p['high']*100:.2f}%\")")
    study_line="$study_line$s $study_runs $out $(nproc)|$rate
"
  done
fi

python3 - "$results" "$runs" "$request_up_to" "$pin" "$study_line" <<'PY'
import statistics, sys
path, runs, request_up_to, pin, study = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
times, rss, requests, order = {}, {}, {}, []
for line in open(path):
    f = line.split()
    name, rps, sampler = f[0], int(f[1]), f[2]
    if name not in order:
        order.append(name)
    if f[3] == "requests":
        requests[(name, sampler)] = f[4] if len(f) > 4 else "?"
        continue
    run = int(f[3])
    times.setdefault((name, sampler), {})[run] = float(f[4])
    rss.setdefault((name, sampler), []).append(int(f[5]))
def med(v):
    return statistics.median(v) if v else None
print(f"Release build, {runs} runs per case and sampler (seeds 1..{runs}), {('pinned with `' + pin + '`') if pin else 'not pinned'}; wall time from `/usr/bin/time`.\n")
print("| Plan at rate | Sampler | Simulated requests (seed 1) | Wall time, median (min–max) | Peak RSS, max |")
print("|---|---|---:|---:|---:|")
for name in order:
    for s in ("aggregated", "request"):
        t = times.get((name, s))
        if not t:
            if s == "request":
                print(f"| {name} | per request | — | not run (above {int(request_up_to):,} req/s) | — |")
            continue
        v = list(t.values())
        label = "aggregated" if s == "aggregated" else "per request"
        print(f"| {name} | {label} | {requests.get((name, s), '?')} | {med(v):.2f} s ({min(v):.2f}–{max(v):.2f}) | {max(rss[(name, s)]) / 1024:.1f} MiB |")
print("\n| Plan at rate | Per request / aggregated, median of the runs' ratios (range) |")
print("|---|---:|")
for name in order:
    a, r = times.get((name, "aggregated"), {}), times.get((name, "request"), {})
    ratios = [r[i] / a[i] for i in a if i in r and a[i] > 0]
    if ratios:
        print(f"| {name} | {med(ratios):.1f}× ({min(ratios):.1f}–{max(ratios):.1f}) |")
base = times.get(("production-125", "aggregated"))
if base:
    print("\nAggregated cost per run against the production plan at 125 req/s (ratio of medians):", end=" ")
    parts = []
    for name in order:
        if name.startswith("production-") and (name, "aggregated") in times:
            parts.append(f"{name.split('-')[1]} req/s {med(list(times[(name, 'aggregated')].values())) / med(list(base.values())):.2f}×")
    print(", ".join(parts) + ".")
if study.strip():
    print("\n| Study of the staging plan | Runs | Cores | Wall time | Peak RSS | Rollbacks with no fault active |")
    print("|---|---:|---:|---:|---:|---|")
    for line in study.strip().splitlines():
        head, rate = line.split("|")
        s, n, secs, kib, cores = head.split()
        label = "aggregated" if s == "aggregated" else "per request"
        print(f"| {label} | {int(n):,} | {cores} | {float(secs):.1f} s | {int(kib) / 1024:.1f} MiB | {rate} |")
PY
