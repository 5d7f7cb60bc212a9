#!/usr/bin/env bash
# The chaos soak (docs/reliability.md, "Chaos soak"): a compressed live rollout (about
# 9 minutes of stages at --duration-scale 1) through `ramp proxy` and `ramp run` as child
# processes, while the faults of scripts/chaos/scenario.toml happen on schedule: the proxy
# and the controller killed with SIGKILL and started again, a stable pool member flapping,
# slowloris clients, stalled uploads aimed at the canary, and a proxy outage across a
# stage's end. Not a CI test.
#
#   scripts/chaos.sh [--runs N] [--aa | --regression-after S] [--duration-scale X]
#
#   --runs N               runs, one after the other (default 1); run i uses seed i
#   --aa                   canary = stable (the default): any rollback or blind promotion fails
#   --regression-after S   the canary regresses S real seconds after the controller first
#                          starts (not scaled); the run fails unless it is rolled back
#   --duration-scale X     multiply stage durations and fault moments by X (default 1;
#                          0.3 is about 3 minutes a run)
#
# Builds `ramp` and `ramp-chaos` with --profile quick (nothing to do when they are up to
# date), prints each run's findings and a final table, and writes everything to
# out/chaos/<UTC time>/run-<i>/ (summary.json, summary.md, logs/). Exit status: 0 when every
# run passed, 1 when one did not (an A/A run rolled back or promoted blind, a regression
# was not rolled back), 2 when the soak itself could not run, 130 when interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f scripts/lib.sh ]; then
  # shellcheck source=/dev/null
  . scripts/lib.sh
fi

usage() {
  sed -n '9,16p' "$0" | sed 's/^# \{0,1\}//'
}

runs=1
mode=(--aa)
scale=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    --aa) mode=(--aa); shift ;;
    --regression-after) mode=(--regression-after "${2:?--regression-after needs seconds}"); shift 2 ;;
    --duration-scale) scale=${2:?--duration-scale needs a number}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "chaos.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$runs" in
  ''|*[!0-9]*|0) echo "chaos.sh: --runs must be a whole number of at least 1, got $runs" >&2; exit 2 ;;
esac

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
echo "== building ramp and ramp-chaos (--profile quick)"
cargo build --profile quick --locked -q -p ramp -p ramp-chaos

out="out/chaos/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
echo "== $runs run(s): ${mode[*]}, duration scale $scale; findings in $out"
status=0
for i in $(seq 1 "$runs"); do
  echo "== run $i of $runs"
  code=0
  ./target/quick/ramp-chaos run --ramp ./target/quick/ramp \
    --scenario scripts/chaos/scenario.toml --out "$out/run-$i" \
    "${mode[@]}" --duration-scale "$scale" --seed "$i" --title "Run $i of $runs" \
    </dev/null || code=$?
  case "$code" in
    0) ;;
    1) [ "$status" -eq 2 ] || status=1 ;;
    130) echo "chaos.sh: interrupted" >&2; exit 130 ;;
    *) echo "chaos.sh: run $i could not be carried out (exit $code)" >&2; status=2 ;;
  esac
done

summaries=()
for i in $(seq 1 "$runs"); do
  [ -f "$out/run-$i/summary.json" ] && summaries+=("$out/run-$i/summary.json")
done
echo
echo "== all runs ($out)"
if [ "${#summaries[@]}" -gt 0 ]; then
  ./target/quick/ramp-chaos table "${summaries[@]}" || true
fi
exit "$status"
