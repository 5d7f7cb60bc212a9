#!/usr/bin/env bash
# Times a resume of the staging plan's 31 h of slots (issue 15): the full replay of every
# journaled input against the replay from the latest engine snapshot.
#
# ramp-live's `resume_bench` example journals a whole run of examples/phase8-staging.toml
# into a SQLite journal the way a live driver does (every input before the engine sees it,
# simulated slots at the plan's baseline every 5 s, a snapshot at each stage start and
# checkpoint), stopping one interval before the last stage ends, then times
# `ramp_live::driver::replay_run` both ways, alternating, and checks that both rebuild the
# same engine. It prints each round and the medians.
#
# Usage: scripts/bench-resume.sh [--runs N] [--quick]
# --quick builds with the quick profile (ramp-live, serde_json and SQLite unoptimised; say so
# when quoting its figures) instead of the release profile every other benchmark measures.
# The journal (about 100 MB) goes to /dev/shm when it exists, else to the work directory.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=5
PROFILE=release
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --quick) PROFILE=quick; shift ;;
    -h | --help) bench_usage "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
bench_uint --runs "$RUNS"
bench_work_dir ramp-bench-resume
DIR="$BENCH_WORK"
if [ -d /dev/shm ] && [ -w /dev/shm ]; then DIR=/dev/shm; fi

if [ "$PROFILE" = release ]; then
  bench_build_release -p ramp-live --example resume_bench
else
  (cd "$BENCH_ROOT" && cargo build --quiet --profile quick --locked -p ramp-live --example resume_bench)
fi
echo "profile: $PROFILE; load average before: $(bench_load)"
"$(bench_target_dir)/$PROFILE/examples/resume_bench" --runs "$RUNS" --dir "$DIR"
echo "load average after: $(bench_load)"
