#!/usr/bin/env bash
# Benchmarks the OFREP flags server on loopback: single and bulk evaluation throughput and
# latency percentiles under load, with and without the per-flag user statistics.
#
# The server is ramp-flags' standalone example (`examples/ofrep_server.rs`, which calls
# `ramp_flags::cli::run`, exactly what `ramp flags serve` runs), built in release and pinned
# to one worker thread, serving a flags file of 8 flags (rollout-following, fixed-weight,
# static, disabled; booleans, strings, numbers, objects) at a live weight of 25 %. wrk (one
# thread) sends POST bodies from a Lua script whose `targetingKey` cycles through 100,000
# users, so that the bucketing and the distinct-user counting see a realistic population.
# Each case runs DURATION seconds per round after a 2 s warm-up; the report gives medians
# over the rounds. flagd is not installable here from Debian, npm or PyPI (only its
# evaluator libraries and providers are), so there is no side-by-side run; see
# docs/benchmarks-flags.md.
#
# Usage: scripts/bench-flags.sh [--duration S] [--connections N] [--rounds N] [--out FILE]
# Traffic goes only to 127.0.0.1. Everything started here is stopped on exit.
set -euo pipefail

DURATION=10
CONNECTIONS=50
ROUNDS=2
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
for v in "$DURATION" "$CONNECTIONS" "$ROUNDS"; do
  case "$v" in ''|*[!0-9]*) echo "numeric arguments only: $v" >&2; exit 2 ;; esac
done
if [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 300 ] || [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 10 ] \
  || [ "$CONNECTIONS" -lt 1 ] || [ "$CONNECTIONS" -gt 2000 ]; then
  echo "refusing an unbounded run (1 <= duration <= 300, 1 <= rounds <= 10, 1 <= connections <= 2000)" >&2
  exit 2
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/ramp-bench-flags.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- tools -----------------------------------------------------------------------------
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} (Debian packages)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
echo "building the OFREP server example (release)" >&2
CARGO_TARGET_DIR="$TARGET" cargo build --quiet --release --manifest-path "$ROOT/crates/ramp-flags/Cargo.toml" --example ofrep_server
SERVER="$TARGET/release/examples/ofrep_server"

P_STATS=18116; P_NOSTATS=18117
for p in $P_STATS $P_NOSTATS; do
  if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "port $p is already in use" >&2; exit 1; fi
done

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; exit 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' /proc/"$1"/stat 2>/dev/null || echo 0; }
CLK_TCK=$(getconf CLK_TCK)

# --- the flags and the load script --------------------------------------------------------
cat > "$WORK/flags.toml" <<'EOF'
[flags.phase8_encryption_enabled]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"

[flags.phase8_analytics_persistence]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"

[flags.phase8_gamification]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"
salt = "phase8-canary-20251006"

[flags.banner_color]
variants = { red = "#f00", blue = "#00f" }
default_variant = "red"
on_variant = "blue"
weight = 12.5

[flags.max_items]
variants = { small = 10, large = 100 }
default_variant = "small"
on_variant = "large"
weight = 50

[flags.ratio]
variants = { low = 0.25, high = 0.75 }
default_variant = "low"
metadata = { owner = "growth", ticket = 42 }

[flags.limits]
variants = { basic = { rps = 10, tier = "basic" }, pro = { rps = 100, tier = "pro" } }
default_variant = "basic"
on_variant = "pro"
weight = 5

[flags.old_checkout]
variants = { on = true, off = false }
default_variant = "on"
enabled = false
EOF

# One Lua state per wrk thread; the counter walks the user population in order, so every
# user is evaluated about as often as every other.
cat > "$WORK/ofrep.lua" <<'EOF'
local users = tonumber(os.getenv("BENCH_USERS") or "100000")
local path = os.getenv("BENCH_PATH") or "/ofrep/v1/evaluate/flags"
local headers = { ["Content-Type"] = "application/json" }
local i = 0
request = function()
  i = i + 1
  local body = '{"context":{"targetingKey":"user-' .. (i % users) .. '","plan":"pro","country":"FR"}}'
  return wrk.format("POST", path, headers, body)
end
EOF

# --- servers ---------------------------------------------------------------------------------
"$SERVER" --workers 1 --flags "$WORK/flags.toml" --listen 127.0.0.1:$P_STATS --weight 25 \
  >"$WORK/server-stats.log" 2>&1 & STATS_PID=$!; PIDS+=($STATS_PID)
"$SERVER" --workers 1 --flags "$WORK/flags.toml" --listen 127.0.0.1:$P_NOSTATS --weight 25 --no-stats \
  >"$WORK/server-nostats.log" 2>&1 & NOSTATS_PID=$!; PIDS+=($NOSTATS_PID)
wait_port $P_STATS; wait_port $P_NOSTATS
sleep 0.5

# A sanity check: both endpoints answer 200 with the expected shapes.
curl -sf -X POST -H 'content-type: application/json' -d '{"context":{"targetingKey":"user-1"}}' \
  "http://127.0.0.1:$P_STATS/ofrep/v1/evaluate/flags/phase8_encryption_enabled" >"$WORK/single.json"
curl -sf -X POST -H 'content-type: application/json' -d '{"context":{"targetingKey":"user-1"}}' \
  "http://127.0.0.1:$P_STATS/ofrep/v1/evaluate/flags" >"$WORK/bulk.json"
SINGLE_BYTES=$(wc -c <"$WORK/single.json"); BULK_BYTES=$(wc -c <"$WORK/bulk.json")
IDLE_STATS=$(rss_kib $STATS_PID); IDLE_NOSTATS=$(rss_kib $NOSTATS_PID)

# Converts a wrk latency ("1.23ms", "850.00us", "1.02s") to microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); print v + 0 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 }
    else print -1 }'
}

# run CASE PORT PID PATH -> appends "case rps p50_us p99_us peak_rss_kib errors cpu_us_per_request"
RESULTS="$WORK/results.txt"
run() {
  local name="$1" port="$2" pid="$3" path="$4"
  BENCH_PATH="$path" wrk -t1 -c"$CONNECTIONS" -d2s -s "$WORK/ofrep.lua" "http://127.0.0.1:$port" >/dev/null 2>&1 || true
  ( while sleep 1; do rss_kib "$pid"; done ) >"$WORK/rss-$name.txt" & local sampler=$!
  local cpu0 cpu1
  cpu0=$(cpu_ticks "$pid")
  BENCH_PATH="$path" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/ofrep.lua" \
    "http://127.0.0.1:$port" >"$WORK/wrk-$name.txt" 2>&1
  cpu1=$(cpu_ticks "$pid")
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  local peak rps p50 p99 errors total cpu_per_req
  peak=$(sort -n "$WORK/rss-$name.txt" | tail -1)
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk-$name.txt")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$WORK/wrk-$name.txt")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$WORK/wrk-$name.txt")")
  errors=$(awk '/Non-2xx or 3xx responses:/ {n += $5} /Socket errors:/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$WORK/wrk-$name.txt")
  total=$(awk '/requests in/ {print $1}' "$WORK/wrk-$name.txt")
  cpu_per_req=$(awk -v d=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v n="${total:-0}" 'BEGIN { if (n > 0) printf "%.2f", d / hz * 1e6 / n; else print 0 }')
  echo "$name ${rps:-0} ${p50:-0} ${p99:-0} ${peak:-0} ${errors:-0} ${cpu_per_req}" >>"$RESULTS"
  echo "  $name: ${rps:-?} req/s, p50 ${p50:-?} us, p99 ${p99:-?} us" >&2
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "machine: $(nproc) cores, $(uname -r); wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s); load average $LOAD_BEFORE" >&2
SINGLE=/ofrep/v1/evaluate/flags/phase8_encryption_enabled
BULK=/ofrep/v1/evaluate/flags
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" >&2
  run single $P_STATS $STATS_PID $SINGLE
  run bulk $P_STATS $STATS_PID $BULK
  run single_nostats $P_NOSTATS $NOSTATS_PID $SINGLE
  run bulk_nostats $P_NOSTATS $NOSTATS_PID $BULK
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# What the statistics counted over the run (the last 5 minutes: every round).
curl -sf "http://127.0.0.1:$P_STATS/stats" >"$WORK/stats.json"

# --- report -----------------------------------------------------------------------------------
report() {
  echo "### OFREP evaluation under load (medians over $ROUNDS round(s); wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency)"
  echo
  echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)."
  echo "Load average (1, 5, 15 min) before the runs: $LOAD_BEFORE; after: $LOAD_AFTER. The server has one worker thread; wrk (one thread) runs on the same cores, so absolute numbers are noisy; the cases alternate so that they share the noise."
  echo "Versions: $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'), ramp-flags $(awk -F'"' '/^version/ {print $2; exit}' "$ROOT/crates/ramp-flags/Cargo.toml") (release, \`examples/ofrep_server\`). Response sizes: single ${SINGLE_BYTES} B, bulk (8 flags) ${BULK_BYTES} B."
  echo
  awk -v idle_stats="$IDLE_STATS" -v idle_nostats="$IDLE_NOSTATS" '
    function median(arr, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
      return (n % 2) ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
    }
    {
      n[$1]++; k = n[$1]
      rps[$1, k] = $2; p50[$1, k] = $3; p99[$1, k] = $4; rss[$1, k] = $5; bad[$1] += $6; cpu[$1, k] = $7
    }
    END {
      split("single bulk single_nostats bulk_nostats", names, " ")
      label["single"] = "single evaluation, statistics on"
      label["bulk"] = "bulk evaluation (8 flags), statistics on"
      label["single_nostats"] = "single evaluation, `--no-stats`"
      label["bulk_nostats"] = "bulk evaluation (8 flags), `--no-stats`"
      printf "| case | requests/s | p50 | p99 | CPU per request | RSS idle | RSS peak | errors |\n"
      printf "|---|---:|---:|---:|---:|---:|---:|---:|\n"
      for (i = 1; i <= 4; i++) {
        nm = names[i]; c = n[nm]
        for (k = 1; k <= c; k++) { a[k] = rps[nm, k] } ; R = median(a, c)
        for (k = 1; k <= c; k++) { a[k] = p50[nm, k] } ; P50 = median(a, c)
        for (k = 1; k <= c; k++) { a[k] = p99[nm, k] } ; P99 = median(a, c)
        for (k = 1; k <= c; k++) { a[k] = cpu[nm, k] } ; CPU = median(a, c)
        m = 0; for (k = 1; k <= c; k++) if (rss[nm, k] > m) m = rss[nm, k]
        idle = (nm ~ /nostats/) ? idle_nostats : idle_stats
        printf "| %s | %.0f | %.0f us | %.0f us | %.1f us | %.1f MiB | %.1f MiB | %d |\n", label[nm], R, P50, P99, CPU, idle / 1024, m / 1024, bad[nm]
      }
    }' "$RESULTS"
  echo
  echo "Raw runs (case, requests/s, p50 us, p99 us, peak RSS KiB, errors, CPU us per request):"
  echo
  echo '```'
  cat "$RESULTS"
  echo '```'
  echo
  echo "What \`GET /stats\` counted over the whole run (100,000 users cycling; window 5 min):"
  echo
  echo '```'
  python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
for f in doc["flags"]:
    total = f["on_users"] + f["off_users"]
    share = 100.0 * f["on_users"] / total if total else 0.0
    w = "-" if f["weight"] is None else "%g%%" % f["weight"]
    print("%s: %d users on (%.1f%%), %d off; weight %s; %s" % (f["key"], f["on_users"], share, f["off_users"], w, "exact" if f["exact"] else "estimated"))
' "$WORK/stats.json" 2>/dev/null || cat "$WORK/stats.json"
  echo '```'
}
if [ -n "$OUT" ]; then report | tee "$OUT"; else report; fi
