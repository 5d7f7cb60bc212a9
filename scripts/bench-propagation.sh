#!/usr/bin/env bash
# Rollback propagation by router: how long after the controller decides to roll back a
# request can still reach the canary. For each router, a live `ramp run` drives the canary to
# 50 % while a probe client sends steady traffic through the router; the operator's
# `ramp abort` goes through the control API to the engine, which decides the rollback; the
# journal records that decision with its wall-clock time (the `unix_ms` of the run's
# `rollback_initiated` event, written as the engine returns the decision, before any weight
# is sent). The upstreams write the wall-clock arrival time of every request they receive. Propagation = the last arrival at the canary at or after the decision, minus the
# decision (0 when none arrived after it): the first moment no new request reaches the canary.
# A round with no canary arrival in the second before the decision is refused, not counted;
# each round also reports the longest time within a second of the decision in which no
# request reached either upstream, the figure's resolution (a stalled probe shows there).
#
# Routers: `ramp` (one `ramp proxy`), `fleet` (three `ramp proxy` processes driven as one,
# the load spread over the three), `haproxy` (HAProxy's runtime API on a unix socket, its own
# counters as metrics), `nginx` (Ramp's upstream include file, `nginx -t`, `nginx -s reload`;
# metrics from a real Prometheus scraping the upstreams) and `command` (`curl` setting a
# `ramp proxy`'s weight through its admin API; metrics from Prometheus). Each round measures
# every router once, the order reversed every other round (the machine drifts). Everything
# runs on 127.0.0.1 with free ports, in a temporary directory removed at exit.
#
# Usage: scripts/bench-propagation.sh [--rounds N] [--routers LIST] [--rps R] [--out FILE]
#   --rounds N      rounds (default 5, at most 20)
#   --routers LIST  comma-separated subset of ramp,fleet,haproxy,nginx,command (default all)
#   --rps R         probe requests per second through the router (default 500)
#   --out FILE      also write the report to FILE
#   --keep DIR      copy each round's plan, journal and logs, and the upstreams' arrivals, to DIR
# RAMP_BIN and PROBE_BIN use prebuilt `ramp` and `ramp-probe` binaries instead of building
# the release ones (the figures in docs/benchmarks.md are the release build's).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS=5
ROUTERS="ramp,fleet,haproxy,nginx,command"
RPS=500
OUT=""
KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="${2:-}"; shift 2 ;;
    --routers) ROUTERS="${2:-}"; shift 2 ;;
    --rps) RPS="${2:-}"; shift 2 ;;
    --out) OUT="${2:-}"; shift 2 ;;
    --keep) KEEP="${2:-}"; shift 2 ;;
    -h | --help) bench_usage "$0"; exit 0 ;;
    *) echo "bench-propagation.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
bench_uint --rounds "$ROUNDS"
bench_uint --rps "$RPS"
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 20 ] || [ "$RPS" -lt 50 ] || [ "$RPS" -gt 5000 ]; then
  echo "bench-propagation.sh: refusing an unbounded run (1 <= --rounds <= 20, 50 <= --rps <= 5000)" >&2
  exit 2
fi
IFS=',' read -r -a ORDER <<<"$ROUTERS"
for r in "${ORDER[@]}"; do
  case "$r" in
    ramp | fleet | haproxy | nginx | command) ;;
    *) echo "bench-propagation.sh: --routers: unknown router '$r' (expected ramp, fleet, haproxy, nginx or command)" >&2; exit 2 ;;
  esac
done

bench_need_tools curl:curl haproxy:haproxy nginx:nginx prometheus:prometheus python3:python3
HAPROXY="$(bench_tool haproxy)"
NGINX="$(bench_tool nginx)"
PROMETHEUS="$(bench_tool prometheus)"

if [ -n "${RAMP_BIN:-}" ] && [ -n "${PROBE_BIN:-}" ]; then
  RAMP="$RAMP_BIN"; PROBE="$PROBE_BIN"
else
  echo "building ramp and ramp-probe (release)" >&2
  bench_build_release -p ramp -p ramp-demo --bin ramp --bin ramp-probe
  RAMP="$(bench_target_dir)/release/ramp"; PROBE="$(bench_target_dir)/release/ramp-probe"
fi

bench_work_dir ramp-bench-propagation
W="$BENCH_WORK"

# --- the upstreams and Prometheus, shared by every round ---------------------------------
P_STABLE=$(bench_free_port); P_CANARY=$(bench_free_port)
while [ "$P_CANARY" = "$P_STABLE" ]; do P_CANARY=$(bench_free_port); done
ARRIVALS="$W/arrivals.txt"
bench_at_exit "touch '$W/stop'; sleep 0.2"
"$PROBE" serve --stable "127.0.0.1:$P_STABLE" --canary "127.0.0.1:$P_CANARY" \
  --arrivals "$ARRIVALS" --stop-file "$W/stop" --max-seconds 1800 2>"$W/serve.log" &
bench_track $!
bench_wait_port "$P_STABLE"; bench_wait_port "$P_CANARY"

# Prometheus scraping both upstreams every second, for the routers whose metrics come from
# it (nginx, command); ready once both have been scraped (bounded: 30 s). Sets P_PROM.
start_prometheus() {
  local up=0
  P_PROM=$(bench_free_port)
  mkdir -p "$W/prometheus"
  cat >"$W/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: probe-upstreams
    static_configs:
      - targets: ["127.0.0.1:$P_STABLE", "127.0.0.1:$P_CANARY"]
EOF
  "$PROMETHEUS" --config.file="$W/prometheus/prometheus.yml" --storage.tsdb.path="$W/prometheus/data" \
    --web.listen-address="127.0.0.1:$P_PROM" --log.level=warn >"$W/prometheus/log" 2>&1 &
  bench_track $!
  for _ in $(seq 1 300); do
    up=$(curl -s --max-time 1 "http://127.0.0.1:$P_PROM/api/v1/query?query=sum(up)" 2>/dev/null \
      | python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)' 2>/dev/null || echo 0)
    [ "$up" = 2 ] && return 0
    sleep 0.1
  done
  echo "Prometheus did not scrape both upstreams within 30 s:" >&2; tail -5 "$W/prometheus/log" >&2; exit 1
}
P_PROM=""
case ",$ROUTERS," in
  *,nginx,* | *,command,*) start_prometheus ;;
esac

LOAD_BEFORE="$(bench_load)"
echo "machine: $(nproc) cores; load average $LOAD_BEFORE; $ROUNDS round(s) of ${ORDER[*]} at $RPS req/s" >&2

# --- one measurement --------------------------------------------------------------------
# The plan: the canary at 50 % for far longer than a round, aborted by the operator.
plan() { # DIR ROUTER-SECTION METRICS-SECTION
  cat >"$1/plan.toml" <<EOF
[deployment]
id = "prop-bench"
service = "probe"
environment = "bench"

$2

[control]
listen = "127.0.0.1:$(bench_free_port)"

$3

[gates]
evaluate_every = "1s"
window = "5s"
min_samples = 10
error_rate = { max = "50%" }

[[stages]]
weight = 50
duration = "10m"
checkpoint = "1m"

[[stages]]
weight = 100
duration = "1m"
checkpoint = "1m"
EOF
}
PROM_METRICS="[metrics]
source = \"prometheus\"
url = \"http://127.0.0.1:$P_PROM\""

# Starts `ramp proxy` in the background on free ports; sets PROXY_LISTEN and PROXY_ADMIN.
start_proxy() { # DIR NAME
  PROXY_LISTEN=$(bench_free_port); PROXY_ADMIN=$(bench_free_port)
  RAMP_LOG=warn "$RAMP" proxy --workers 1 --listen "127.0.0.1:$PROXY_LISTEN" --admin-listen "127.0.0.1:$PROXY_ADMIN" \
    --stable "127.0.0.1:$P_STABLE" --canary "127.0.0.1:$P_CANARY" --weight 0 --deployment-id prop-bench \
    --state-file "$1/$2.state" >"$1/$2.log" 2>&1 &
  ROUND_PIDS+=($!)
  bench_wait_port "$PROXY_LISTEN"; bench_wait_port "$PROXY_ADMIN"
}

# Starts ROUTER in DIR and writes its plan; sets TARGETS (where the probe sends).
start_router() { # ROUTER DIR
  local d="$2" admins=() i
  TARGETS=()
  case "$1" in
    ramp)
      start_proxy "$d" proxy
      TARGETS=("127.0.0.1:$PROXY_LISTEN")
      plan "$d" "[router]
admin = \"http://127.0.0.1:$PROXY_ADMIN\"" ""
      ;;
    fleet)
      for i in 1 2 3; do
        start_proxy "$d" "proxy$i"
        TARGETS+=("127.0.0.1:$PROXY_LISTEN"); admins+=("\"http://127.0.0.1:$PROXY_ADMIN\"")
      done
      plan "$d" "[router]
admin = [$(IFS=,; echo "${admins[*]}")]" ""
      ;;
    haproxy)
      local listen; listen=$(bench_free_port)
      cat >"$d/haproxy.cfg" <<EOF
global
    nbthread 1
    stats socket $d/haproxy.sock mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:$listen
    default_backend app
backend app
    balance roundrobin
    server stable 127.0.0.1:$P_STABLE weight 100
    server canary 127.0.0.1:$P_CANARY weight 0
EOF
      "$HAPROXY" -f "$d/haproxy.cfg" -db >"$d/haproxy.log" 2>&1 &
      ROUND_PIDS+=($!)
      bench_wait_port "$listen"
      for _ in $(seq 1 100); do [ -S "$d/haproxy.sock" ] && break; sleep 0.05; done
      TARGETS=("127.0.0.1:$listen")
      plan "$d" "[router]
kind = \"haproxy\"
socket = \"$d/haproxy.sock\"
backend = \"app\"
stable = [\"stable\"]
canary = \"canary\"" ""
      ;;
    nginx)
      local listen; listen=$(bench_free_port)
      mkdir -p "$d/nginx/tmp"
      cat >"$d/nginx/upstream.conf" <<EOF
upstream app {
    server 127.0.0.1:$P_STABLE weight=10000;
    server 127.0.0.1:$P_CANARY down;
}
EOF
      cat >"$d/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $d/nginx/nginx.pid;
error_log $d/nginx/error.log notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $d/nginx/tmp/body;
    proxy_temp_path $d/nginx/tmp/proxy;
    fastcgi_temp_path $d/nginx/tmp/fastcgi;
    uwsgi_temp_path $d/nginx/tmp/uwsgi;
    scgi_temp_path $d/nginx/tmp/scgi;
    include $d/nginx/upstream.conf;
    server {
        listen 127.0.0.1:$listen;
        location / { proxy_pass http://app; }
    }
}
EOF
      local opts="\"-p\", \"$d/nginx\", \"-c\", \"$d/nginx/nginx.conf\", \"-e\", \"$d/nginx/error.log\""
      "$NGINX" -p "$d/nginx" -c "$d/nginx/nginx.conf" -e "$d/nginx/error.log" >"$d/nginx/stderr.log" 2>&1 &
      ROUND_PIDS+=($!)
      bench_wait_port "$listen"
      TARGETS=("127.0.0.1:$listen")
      plan "$d" "[router]
kind = \"nginx\"
upstream_file = \"$d/nginx/upstream.conf\"
upstream = \"app\"
stable = [\"127.0.0.1:$P_STABLE\"]
canary = [\"127.0.0.1:$P_CANARY\"]
test = [\"$NGINX\", \"-t\", \"-q\", $opts]
reload = [\"$NGINX\", \"-s\", \"reload\", $opts]
pid_file = \"$d/nginx/nginx.pid\"
timeout = \"5s\"" "$PROM_METRICS"
      ;;
    command)
      start_proxy "$d" proxy
      TARGETS=("127.0.0.1:$PROXY_LISTEN")
      plan "$d" "[router]
kind = \"command\"
set_weight = [\"curl\", \"-sf\", \"--max-time\", \"2\", \"-X\", \"PUT\", \"-H\", \"content-type: application/json\",
  \"-d\", '{\"canary\": {weight}}', \"http://127.0.0.1:$PROXY_ADMIN/weights\"]
timeout = \"5s\"" "$PROM_METRICS"
      ;;
  esac
}

# Waits (bounded) until the canary has received N more requests than it had at BASE.
wait_canary() { # BASE N SECONDS
  local now
  for _ in $(seq 1 $(( $3 * 20 ))); do
    now=$(grep -c '^canary' "$ARRIVALS" || true)
    [ "$now" -ge $(( $1 + $2 )) ] && return 0
    sleep 0.05
  done
  return 1
}

# What a round started, stopped by stop_round, or at exit if the script is interrupted.
ROUND_PIDS=()
RUN_PID=""
bench_at_exit 'stop_round "$RUN_PID"'

RESULTS="$W/results.txt"
: >"$RESULTS"
# Measures ROUTER once in round ROUND; appends "router round ms before after" or says why not.
measure() { # ROUTER ROUND
  local router="$1" round="$2" d="$W/r$2-$1" run_pid rc decision line
  mkdir -p "$d"
  ROUND_PIDS=()
  start_router "$router" "$d"
  local targets=()
  for t in "${TARGETS[@]}"; do targets+=(--target "$t"); done
  "$PROBE" load "${targets[@]}" --rps "$RPS" --seconds 90 2>"$d/load.log" &
  local load_pid=$!; ROUND_PIDS+=($load_pid)
  local base; base=$(grep -c '^canary' "$ARRIVALS" || true)
  "$RAMP" run "$d/plan.toml" --journal "$d/j.db" -q >"$d/run.log" 2>&1 &
  run_pid=$!; RUN_PID=$run_pid
  if ! wait_canary "$base" 200 30; then
    echo "  $router round $round: the canary got no steady traffic within 30 s (not counted; --keep keeps the logs)" >&2
    tail -3 "$d/run.log" >&2 || true
    stop_round "$run_pid"; return 0
  fi
  sleep 2
  timeout 15 "$RAMP" abort --journal "$d/j.db" --as bench-propagation --reason "propagation benchmark" >"$d/abort.log" 2>&1 \
    || { echo "  $router round $round: ramp abort failed: $(tail -1 "$d/abort.log")" >&2; stop_round "$run_pid"; return 0; }
  rc=0
  for _ in $(seq 1 300); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$run_pid" 2>/dev/null; then
    echo "  $router round $round: the run did not end within 30 s of the abort (not counted)" >&2
    stop_round "$run_pid"; return 0
  fi
  wait "$run_pid" || rc=$?
  RUN_PID=""
  # The probe keeps sending for 1.5 s after the run ended (the router's last change is
  # confirmed by then), and the arrivals are written every 50 ms.
  sleep 1.5
  kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true
  sleep 0.2
  # The decision's time, and the time of the last event journaled for the same input (the
  # controller journals every decision of an input before it acts on any, so the router is
  # called after that write): "DECISION_MS JOURNAL_MS", or nothing without a rollback.
  local journaled
  journaled=$(python3 - "$d/j.db" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = db.execute("SELECT unix_ms, kind, body FROM events ORDER BY run_id, seq").fetchall()
decision = next(((t, json.loads(b).get("input_seq")) for t, k, b in rows if k == "rollback_initiated"), None)
if decision:
    last = max(t for t, k, b in rows if json.loads(b).get("input_seq") == decision[1])
    print(decision[0], last - decision[0])
PY
)
  decision=${journaled% *}
  if [ "$rc" != 3 ] || [ -z "$journaled" ]; then
    echo "  $router round $round: the run ended with exit $rc and no rollback decision journaled (not counted); $(tail -1 "$d/run.log")" >&2
    stop_round ""; return 0
  fi
  if ! line=$("$PROBE" propagation --arrivals "$ARRIVALS" --decision-ms "$decision" 2>"$d/propagation.err"); then
    echo "  $router round $round: $(cat "$d/propagation.err") (not counted)" >&2
    stop_round ""; return 0
  fi
  # line: propagation_ms=X before=N after=M max_gap_ms=G
  set -- $line
  echo "$router $round ${1#propagation_ms=} ${2#before=} ${3#after=} ${4#max_gap_ms=} ${journaled#* }" >>"$RESULTS"
  echo "  $router round $round: ${1#propagation_ms=} ms (canary arrivals: ${2#before=} in the second before the decision, ${3#after=} at or after it; longest silence of both upstreams within a second of it ${4#max_gap_ms=} ms)" >&2
  stop_round ""
}

# Stops what the round started (the run if given, the load, the router).
stop_round() {
  local pid
  if [ -n "${1:-}" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi
  RUN_PID=""
  for pid in "${ROUND_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${ROUND_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  done
  ROUND_PIDS=()
  if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && cp -r "$W"/r* "$KEEP"/ && cp "$ARRIVALS" "$KEEP"/; fi
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" >&2
  if [ $((round % 2)) -eq 1 ]; then routers=("${ORDER[@]}"); else routers=(); for ((j = ${#ORDER[@]} - 1; j >= 0; j--)); do routers+=("${ORDER[j]}"); done; fi
  for r in "${routers[@]}"; do measure "$r" "$round"; done
done
LOAD_AFTER="$(bench_load)"

# --- report -------------------------------------------------------------------------------
report() {
  echo "### Rollback propagation by router ($ROUNDS round(s), $RPS req/s through the router, the operator's \`ramp abort\`)"
  echo
  echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r). Load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $LOAD_AFTER."
  echo "Versions: ramp $("$RAMP" --version | awk '{print $2}'), $("$HAPROXY" -v 2>/dev/null | head -1 | awk '{print $1, $2, $3}'), $("$NGINX" -v 2>&1 | sed 's/.*: //'), Prometheus $("$PROMETHEUS" --version 2>/dev/null | head -1 | awk '{print $3}')."
  echo
  echo "Propagation: the last arrival at the canary at or after the engine's rollback decision (the journal's \`rollback_initiated\` time), minus that decision; 0 when none arrived after it."
  echo
  echo "| router | rounds measured | median | min | max | goal | journal writes before the router call, median |"
  echo "|---|---:|---:|---:|---:|---|---:|"
  awk "$BENCH_AWK_MEDIAN"'
    { n[$1]++; v[$1, n[$1]] = $3; j[$1, n[$1]] = $7 }
    END {
      split("ramp fleet haproxy nginx command", names, " ")
      label["ramp"] = "Ramp proxy (one)"; label["fleet"] = "Ramp proxies (fleet of three)"
      label["haproxy"] = "HAProxy 2.6 (runtime API)"; label["nginx"] = "nginx 1.22 (include file + reload)"
      label["command"] = "command (curl to a Ramp proxy)"
      goal["ramp"] = "< 100 ms"; goal["fleet"] = "-"; goal["haproxy"] = "< 100 ms"; goal["nginx"] = "< 1 s"; goal["command"] = "-"
      for (i = 1; i <= 5; i++) {
        nm = names[i]; c = n[nm]
        if (c == 0) continue
        lo = v[nm, 1]; hi = v[nm, 1]
        for (k = 1; k <= c; k++) { a[k] = v[nm, k]; if (a[k] < lo) lo = a[k]; if (a[k] > hi) hi = a[k]; b[k] = j[nm, k] }
        printf "| %s | %d | %.1f ms | %.1f ms | %.1f ms | %s | %d ms |\n", label[nm], c, median(a, c), lo, hi, goal[nm], median(b, c)
      }
    }' "$RESULTS"
  echo
  echo "Raw rounds (router, round, propagation ms, canary arrivals in the second before the decision, canary arrivals at or after it, longest time in ms within a second either side of the decision in which no request reached either upstream: the resolution of the figure; ms from the decision to the start of the last journal write before the router is called):"
  echo
  echo '```'
  cat "$RESULTS"
  echo '```'
}
if [ -n "$OUT" ]; then report | tee "$OUT"; else report; fi
