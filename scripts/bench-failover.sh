#!/usr/bin/env bash
# Controller failover on etcd: leader kills during a live rollout. A real three-member etcd
# cluster (started here), `ramp-probe serve` as the stable and canary upstreams (it logs every
# arrival), one `ramp proxy` in front of them, steady Poisson load through the proxy
# (`ramp-probe load`), and `ramp run` controllers of one plan with `[store] etcd` (one leads,
# one stands by). The rollout has many short stages, so the weight moves every stage. The
# leading controller is killed with SIGKILL the given number of times, each time once the
# previous takeover is done and the new leader has journaled slots of its own; after each
# kill a replacement controller is started, so a standby always exists. After the last kill
# the standby is stopped and the operator's `ramp promote --full` ends the rollout, and the
# journal is read from etcd (`etcdctl`).
#
# Reported:
# - takeover time per kill: the new leader's journaled `takeover` event (its `unix_ms`)
#   minus the wall-clock time just before `kill -9`; median and max;
# - slots lost and double-counted: the run's inputs (ticks and gaps) in journal order must
#   tile plan time, each starting where the previous ended; a later start is time lost, an
#   earlier one time counted twice; gaps (time the controller declared unobserved) are
#   counted apart;
# - the requests the run counted (every tick's canary and stable requests) against the
#   requests the upstreams received between the first tick's start and the last tick's end
#   (the probe's arrival log), the difference and its expected bound;
# - stages: each must be journaled as started and decided once, in order; a repeated stage,
#   or one whose events a killed leader never journaled, is named;
# - weight changes by a fenced leader: the proxy's `ramp_proxy_weight_refused_total`
#   (changes refused for an older fence) and the accepted changes, from the proxy's log,
#   whose fence was older than one accepted before them.
#
# Everything runs on 127.0.0.1 with free ports, in a temporary directory removed at exit.
#
# Usage: scripts/bench-failover.sh [--kills N] [--rps R] [--ttl S] [--out FILE] [--keep DIR]
#   --kills N   leader kills (default 20, at most 50)
#   --rps R     requests per second through the proxy (default 200, 50 to 2000)
#   --ttl S     the controllers' lease TTL in seconds (default 4, 4 to 20; the request timeout
#               is 2 s, which docs/live.md recommends and which must be at most half the TTL)
#   --out FILE  also write the report to FILE
#   --keep DIR  copy the plan, the controllers', proxy's and etcd's logs, the journal read
#               from etcd and the arrivals to DIR
# RAMP_BIN and PROBE_BIN use prebuilt `ramp` and `ramp-probe` binaries instead of building
# the release ones (say which build the figures come from).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

KILLS=20
RPS=200
TTL=4
OUT=""
KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) KILLS="${2:-}"; shift 2 ;;
    --rps) RPS="${2:-}"; shift 2 ;;
    --ttl) TTL="${2:-}"; shift 2 ;;
    --out) OUT="${2:-}"; shift 2 ;;
    --keep) KEEP="${2:-}"; shift 2 ;;
    -h | --help) bench_usage "$0"; exit 0 ;;
    *) echo "bench-failover.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
bench_uint --kills "$KILLS"
bench_uint --rps "$RPS"
bench_uint --ttl "$TTL"
if [ "$KILLS" -lt 1 ] || [ "$KILLS" -gt 50 ] || [ "$RPS" -lt 50 ] || [ "$RPS" -gt 2000 ] \
  || [ "$TTL" -lt 4 ] || [ "$TTL" -gt 20 ]; then
  echo "bench-failover.sh: refusing an unbounded run (1 <= --kills <= 50, 50 <= --rps <= 2000, 4 <= --ttl <= 20)" >&2
  exit 2
fi

bench_need_tools curl:curl python3:python3 etcd:etcd-server etcdctl:etcd-client
ETCD="$(bench_tool etcd)"
ETCDCTL="$(bench_tool etcdctl)"

if [ -n "${RAMP_BIN:-}" ] && [ -n "${PROBE_BIN:-}" ]; then
  RAMP="$RAMP_BIN"; PROBE="$PROBE_BIN"; BUILD="prebuilt, $RAMP"
else
  echo "building ramp and ramp-probe (release)" >&2
  bench_build_release -p ramp -p ramp-demo --bin ramp --bin ramp-probe
  RAMP="$(bench_target_dir)/release/ramp"; PROBE="$(bench_target_dir)/release/ramp-probe"
  BUILD="release build"
fi

bench_work_dir ramp-bench-failover
W="$BENCH_WORK"
DEPLOYMENT="failover-bench"

# Distinct free loopback ports: `ports N` prints N of them.
USED=" "
ports() {
  local n=0 p
  while [ "$n" -lt "$1" ]; do
    p=$(bench_free_port)
    case "$USED" in *" $p "*) continue ;; esac
    USED="$USED$p "; echo "$p"; n=$((n + 1))
  done
}
mapfile -t PORTS < <(ports 10)
E_CLIENT=("${PORTS[0]}" "${PORTS[1]}" "${PORTS[2]}")
E_PEER=("${PORTS[3]}" "${PORTS[4]}" "${PORTS[5]}")
P_STABLE="${PORTS[6]}"; P_CANARY="${PORTS[7]}"; PROXY_LISTEN="${PORTS[8]}"; PROXY_ADMIN="${PORTS[9]}"
bench_ports_free "${PORTS[@]}"

# --- etcd: three members, fast elections as the tests' cluster has ------------------------
INITIAL="m0=http://127.0.0.1:${E_PEER[0]},m1=http://127.0.0.1:${E_PEER[1]},m2=http://127.0.0.1:${E_PEER[2]}"
ENDPOINTS="http://127.0.0.1:${E_CLIENT[0]},http://127.0.0.1:${E_CLIENT[1]},http://127.0.0.1:${E_CLIENT[2]}"
mkdir -p "$W/etcd"
for i in 0 1 2; do
  "$ETCD" --name "m$i" --data-dir "$W/etcd/m$i" \
    --listen-client-urls "http://127.0.0.1:${E_CLIENT[i]}" --advertise-client-urls "http://127.0.0.1:${E_CLIENT[i]}" \
    --listen-peer-urls "http://127.0.0.1:${E_PEER[i]}" --initial-advertise-peer-urls "http://127.0.0.1:${E_PEER[i]}" \
    --initial-cluster "$INITIAL" --initial-cluster-state new --initial-cluster-token ramp-bench-failover \
    --heartbeat-interval 100 --election-timeout 1000 --logger zap --log-level warn >"$W/etcd/m$i.log" 2>&1 &
  bench_track $!
  disown $!
done
ctl() { "$ETCDCTL" --endpoints "$ENDPOINTS" --dial-timeout 2s --command-timeout 5s "$@"; }
healthy=0
for _ in $(seq 1 150); do
  if ctl endpoint health >/dev/null 2>&1; then healthy=1; break; fi
  sleep 0.2
done
if [ "$healthy" != 1 ]; then echo "the etcd cluster was not healthy within 30 s:" >&2; tail -5 "$W"/etcd/m*.log >&2; exit 1; fi

# --- upstreams, proxy, load -----------------------------------------------------------------
ARRIVALS="$W/arrivals.txt"
bench_at_exit "touch '$W/stop'; sleep 0.2"
"$PROBE" serve --stable "127.0.0.1:$P_STABLE" --canary "127.0.0.1:$P_CANARY" \
  --arrivals "$ARRIVALS" --stop-file "$W/stop" --max-seconds 3600 2>"$W/serve.log" &
bench_track $!
bench_wait_port "$P_STABLE"; bench_wait_port "$P_CANARY"
RAMP_LOG=info "$RAMP" proxy --workers 1 --listen "127.0.0.1:$PROXY_LISTEN" --admin-listen "127.0.0.1:$PROXY_ADMIN" \
  --stable "127.0.0.1:$P_STABLE" --canary "127.0.0.1:$P_CANARY" --weight 0 --deployment-id "$DEPLOYMENT" \
  --state-file "$W/proxy.state" >"$W/proxy.log" 2>&1 &
bench_track $!
bench_wait_port "$PROXY_LISTEN"; bench_wait_port "$PROXY_ADMIN"

# The rollout: stages of 15 s, the weight rising every stage, planned to outlast the kills
# (about 15 s each); `ramp promote --full` ends it after the last one.
STAGES=$(( (KILLS * 15 + 60) / 15 ))
LOAD_SECONDS=$(( STAGES * 15 + 120 ))
"$PROBE" load --target "127.0.0.1:$PROXY_LISTEN" --rps "$RPS" --seconds "$LOAD_SECONDS" 2>"$W/load.log" &
LOAD_PID=$!
bench_track "$LOAD_PID"

{
  cat <<EOF
[deployment]
id = "$DEPLOYMENT"
service = "probe"
environment = "bench"

[router]
admin = "http://127.0.0.1:$PROXY_ADMIN"

[store]
etcd = ["http://127.0.0.1:${E_CLIENT[0]}", "http://127.0.0.1:${E_CLIENT[1]}", "http://127.0.0.1:${E_CLIENT[2]}"]
lease_ttl = "${TTL}s"
request_timeout = "2s"
dial_timeout = "2s"

[gates]
evaluate_every = "1s"
window = "5s"
min_samples = 10
error_rate = { max = "50%" }
EOF
  for s in $(seq 1 "$STAGES"); do
    printf '\n[[stages]]\nweight = %d\nduration = "15s"\ncheckpoint = "5s"\n' $(( 2 + s * 90 / STAGES ))
  done
  printf '\n[[stages]]\nweight = 100\nduration = "5s"\ncheckpoint = "5s"\n'
} >"$W/plan.toml"

LOAD_BEFORE="$(bench_load)"
echo "machine: $(nproc) cores; load average $LOAD_BEFORE; $KILLS kills at $RPS req/s, lease ${TTL} s, $STAGES stages of 15 s" >&2

# --- controllers -----------------------------------------------------------------------------
N=0
CTL_PIDS=()
# Starts a controller; its pid is CTL_PIDS[N-1] and its output $W/ctlN.log.
start_controller() {
  N=$((N + 1))
  "$RAMP" run "$W/plan.toml" >"$W/ctl$N.log" 2>&1 &
  CTL_PIDS+=($!)
  bench_track $!
  # Killing it is the point: no "Killed" notice from the shell.
  disown $!
}
# Waits until controller I's output has TEXT: `wait_line I TEXT SECONDS`; 1 if it did not.
wait_line() {
  for _ in $(seq 1 $(( $3 * 20 ))); do
    grep -qF "$2" "$W/ctl$1.log" 2>/dev/null && return 0
    kill -0 "${CTL_PIDS[$1 - 1]}" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
# The number of ticks journaled in the deployment's run so far.
ticks() {
  ctl get --prefix "/ramp/deployments/$DEPLOYMENT/journal/inputs/" --keys-only 2>/dev/null | grep -c . || true
}

start_controller
if ! wait_line 1 "leader: this controller leads $DEPLOYMENT" 30; then
  echo "the first controller did not lead within 30 s:" >&2; tail -5 "$W/ctl1.log" >&2; exit 1
fi
LEADER=1
start_controller
wait_line 2 "standby: " 30 || { echo "the second controller did not stand by within 30 s:" >&2; tail -5 "$W/ctl2.log" >&2; exit 1; }
STANDBY=2

KILLED_AT="$W/kills.txt"
: >"$KILLED_AT"
for k in $(seq 1 "$KILLS"); do
  # The leader journals a few inputs of its own first (about 3 s of ticks).
  base=$(ticks)
  for _ in $(seq 1 200); do
    [ "$(ticks)" -ge $(( base + 3 )) ] && break
    sleep 0.1
  done
  if ! kill -0 "${CTL_PIDS[LEADER - 1]}" 2>/dev/null; then
    echo "kill $k: the leader (controller $LEADER) is not running; the rollout ended or it failed: $(tail -1 "$W/ctl$LEADER.log")" >&2
    break
  fi
  t=$(date +%s%3N)
  kill -9 "${CTL_PIDS[LEADER - 1]}"
  echo "$k $t $LEADER $STANDBY" >>"$KILLED_AT"
  if ! wait_line "$STANDBY" "Took over run" $(( TTL + 20 )); then
    echo "kill $k: controller $STANDBY did not take over within $(( TTL + 20 )) s: $(tail -2 "$W/ctl$STANDBY.log")" >&2
    break
  fi
  echo "  kill $k: controller $LEADER killed, controller $STANDBY took over after $(( $(date +%s%3N) - t )) ms (seen in its output)" >&2
  LEADER=$STANDBY
  start_controller
  STANDBY=$N
  wait_line "$STANDBY" "standby: " 30 || { echo "controller $STANDBY did not stand by within 30 s: $(tail -2 "$W/ctl$STANDBY.log")" >&2; break; }
done

# Ends the rollout. The standby is stopped first (SIGTERM: it leaves the election), so that
# only the leader finishes the run (a standby that won afterwards would only report the
# finished run's outcome). Then promote through the leader's
# control API and wait for the leader to finish.
kill "${CTL_PIDS[STANDBY - 1]}" 2>/dev/null || true
for _ in $(seq 1 100); do kill -0 "${CTL_PIDS[STANDBY - 1]}" 2>/dev/null || break; sleep 0.1; done
timeout 30 "$RAMP" promote --etcd "$ENDPOINTS" --deployment "$DEPLOYMENT" --full --as bench-failover \
  --reason "failover benchmark done" >"$W/promote.log" 2>&1 || echo "ramp promote --full failed: $(tail -1 "$W/promote.log")" >&2
for _ in $(seq 1 600); do kill -0 "${CTL_PIDS[LEADER - 1]}" 2>/dev/null || break; sleep 0.1; done
sleep 1
METRICS="$(curl -s --max-time 2 "http://127.0.0.1:$PROXY_ADMIN/metrics" || true)"
REFUSED="$(awk '$1 == "ramp_proxy_weight_refused_total" {print $2}' <<<"$METRICS")"
LOAD_AFTER="$(bench_load)"
for pid in "${CTL_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
kill "$LOAD_PID" 2>/dev/null || true
sleep 0.5

# The journal, read from etcd: the run, its inputs and events (values are base64 in JSON).
ctl get --prefix "/ramp/deployments/$DEPLOYMENT/journal/" -w json >"$W/journal.json"

ANALYSIS="$W/analysis.txt"
python3 - "$W/journal.json" "$KILLED_AT" "$ARRIVALS" "$W/proxy.log" "${REFUSED:-unknown}" >"$ANALYSIS" <<'PY'
import base64, json, re, statistics, sys

journal, kills_file, arrivals_file, proxy_log, refused = sys.argv[1:6]
kvs = json.load(open(journal)).get("kvs", [])
runs, inputs, events = {}, [], []
for kv in kvs:
    key = base64.b64decode(kv["key"]).decode()
    value = base64.b64decode(kv.get("value", "")).decode()
    parts = key.split("/journal/", 1)[1].split("/")
    if parts[0] == "runs":
        doc = json.loads(value)
        runs[doc["run_id"]] = doc
    elif parts[0] == "inputs":
        inputs.append((int(parts[1]), int(parts[2]), json.loads(value)))
    elif parts[0] == "events":
        events.append((int(parts[1]), int(parts[2]), json.loads(value)))
if not runs:
    print("error: the journal holds no run")
    sys.exit(0)
# The rollout is the first run; any later one is reported (none is expected).
rid = min(runs)
run, origin = runs[rid], runs[rid]["started_unix_ms"]
inputs = sorted(i for i in inputs if i[0] == rid)
events = sorted(e for e in events if e[0] == rid)

# Slots: ticks and gaps in journal order must tile plan time.
lost_n = lost_ms = double_n = double_ms = ticks = gaps = gap_ms = 0
counted = 0
prev_end = first_start = last_end = None
for _, _, doc in inputs:
    if doc["kind"] not in ("tick", "gap"):
        continue
    body = json.loads(doc["body"])
    start, end = body["start_ms"], body["end_ms"]
    if prev_end is not None and start > prev_end:
        lost_n += 1; lost_ms += start - prev_end
    if prev_end is not None and start < prev_end:
        double_n += 1; double_ms += prev_end - start
    if doc["kind"] == "tick":
        ticks += 1
        counted += body["canary"]["requests"] + body["stable"]["requests"]
        if first_start is None:
            first_start = start
        last_end = end
    else:
        gaps += 1; gap_ms += end - start
    prev_end = end

# Served: what the upstreams received between the first tick's start and the last tick's end.
lo_us, hi_us = (origin + first_start) * 1000, (origin + last_end) * 1000
served = 0
for line in open(arrivals_file):
    f = line.split()
    if len(f) == 2 and f[1].isdigit() and lo_us <= int(f[1]) < hi_us:
        served += 1

# Takeovers: each kill's takeover is the first takeover event journaled after it.
takeovers = [(d["unix_ms"], json.loads(d["body"]).get("fence")) for _, _, d in events if d["kind"] == "takeover"]
kills = [tuple(int(x) for x in l.split()) for l in open(kills_file) if l.strip()]
times = []
for k, t, _, _ in kills:
    after = [u for u, _ in takeovers if u >= t]
    times.append((k, min(after) - t) if after else (k, None))

# Weight changes the proxy accepted, in order, with their fences (its log); one whose fence
# is older than a fence accepted before it came from a deposed leader.
fences, stale_accepted = [], 0
for line in open(proxy_log):
    if "weights changed" in line:
        m = re.search(r"fence=Some\((\d+)\)|fence=(\d+)", line)
        if m:
            f = int(m.group(1) or m.group(2))
            if fences and f < max(fences):
                stale_accepted += 1
            fences.append(f)

# Stages: each started and decided once, in order (a repeated stage would show twice; a
# stage whose events a killed leader never journaled shows as missing).
def stages(kind):
    return [json.loads(d["body"])["event"].get("stage") for _, _, d in events if d["kind"] == kind]
started, decided = stages("stage_started"), stages("stage_decided")
top = max(started + decided, default=0)
repeated = sorted({s for s in started if started.count(s) > 1})
missing = sorted(set(range(1, top + 1)) - set(started)) + [f"{s}d" for s in sorted(set(range(1, top + 1)) - set(decided))]

measured = [ms for _, ms in times if ms is not None]
print(f"outcome={run.get('outcome')} runs_in_journal={len(runs)}")
print(f"kills={len(kills)} takeovers_journaled={len(takeovers)} measured={len(measured)}")
if measured:
    print(f"takeover_median_ms={statistics.median(measured):.0f} takeover_max_ms={max(measured)} takeover_min_ms={min(measured)}")
print("takeover_ms_each=" + " ".join(f"{k}:{ms if ms is not None else 'none'}" for k, ms in times))
print(f"ticks={ticks} gaps={gaps} gap_ms={gap_ms}")
print(f"slots_lost={lost_n} lost_ms={lost_ms} slots_double_counted={double_n} double_ms={double_ms}")
print(f"plan_span_s={(last_end - first_start) / 1000:.1f} counted={counted} served={served} difference={counted - served}")
print(f"stages_started={len(started)} stages_repeated={','.join(map(str, repeated)) or 'none'} stage_events_missing={','.join(map(str, missing)) or 'none'}")
print(f"weight_changes_accepted={len(fences)} distinct_fences={len(set(fences))} stale_fence_accepted={stale_accepted} refused_409={refused}")
PY

if [ -n "$KEEP" ]; then
  mkdir -p "$KEEP"
  cp -r "$W/plan.toml" "$W"/ctl*.log "$W/proxy.log" "$W/journal.json" "$W/kills.txt" "$ARRIVALS" "$W/etcd" "$ANALYSIS" "$KEEP"/ 2>/dev/null || true
fi

# --- report --------------------------------------------------------------------------------
val() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" "$ANALYSIS" | head -1; }
report() {
  if grep -q '^error' "$ANALYSIS"; then cat "$ANALYSIS"; return; fi
  echo "### Controller failover ($(val kills) leader kills at $RPS req/s, lease ${TTL} s, request timeout 2 s)"
  echo
  echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r). Load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $LOAD_AFTER."
  echo "Versions: ramp $("$RAMP" --version | awk '{print $2}') ($BUILD), etcd $("$ETCD" --version 2>/dev/null | awk '/etcd Version/ {print $3}') (three members on loopback)."
  echo
  echo "| figure | value |"
  echo "|---|---:|"
  echo "| leader kills (SIGKILL) / takeovers journaled | $(val kills) / $(val takeovers_journaled) |"
  echo "| takeover time, median (kill → the new leader's journaled \`takeover\`) | $(val takeover_median_ms) ms |"
  echo "| takeover time, max | $(val takeover_max_ms) ms |"
  echo "| takeover time, min | $(val takeover_min_ms) ms |"
  echo "| stages started / repeated / whose start or decision (d) is missing from the journal | $(val stages_started) / $(val stages_repeated) / $(val stage_events_missing) |"
  echo "| slots journaled (ticks) / gaps (declared unobserved) | $(val ticks) / $(val gaps) |"
  echo "| slots lost (a slot starting after the previous one's end) | $(val slots_lost) ($(val lost_ms) ms) |"
  echo "| slots double-counted (a slot starting before the previous one's end) | $(val slots_double_counted) ($(val double_ms) ms) |"
  echo "| requests the run counted / the upstreams received over the same $(val plan_span_s) s | $(val counted) / $(val served) (difference $(val difference)) |"
  echo "| weight changes the proxy accepted (distinct fences) | $(val weight_changes_accepted) ($(val distinct_fences)) |"
  echo "| weight changes accepted with a fence older than one accepted before | $(val stale_fence_accepted) |"
  echo "| weight changes refused for an older fence (\`ramp_proxy_weight_refused_total\`) | $(val refused_409) |"
  echo "| the run's outcome | $(val outcome) |"
  echo
  echo "Takeover time per kill (kill number:ms):"
  echo
  echo '```'
  sed -n 's/^takeover_ms_each=//p' "$ANALYSIS"
  echo '```'
}
if [ -n "$OUT" ]; then report | tee "$OUT"; else report; fi
