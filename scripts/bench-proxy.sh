#!/usr/bin/env bash
# Benchmarks ramp-proxy against HAProxy and nginx, side by side, on loopback.
#
# Each contender is a 95/5 weighted reverse proxy with one worker, in front of the same two
# upstreams (a tiny hyper server, one thread each: "stable" gets 95%, "canary" 5%), with
# keep-alive to the upstreams, X-Forwarded-For, and no access log. wrk (one thread, the same
# connections and duration for all) measures (a) the stable upstream directly, (b) ramp-proxy,
# (c) HAProxy, (d) nginx. Memory is the RSS from /proc, idle and peak under load. Then a
# bounded soak runs wrk against ramp-proxy and samples its RSS and open file descriptors.
#
# With --pin, the proxy under test runs alone on CPU 1 and wrk and the upstreams share CPU 0,
# so that each proxy gets one core of its own and the scheduler's placement does not decide
# the result; each round's ramp/HAProxy ratio is reported too (the machine's speed drifts
# between rounds, the ratio within a round much less).
#
# With --pair, each round runs only ramp-proxy and HAProxy, back to back, in an order that
# alternates from round to round, and the report is about the pairs: the median of each
# round's ratio, in how many rounds ramp-proxy was ahead, and a two-sided sign test of that
# count (the chance of a split at least that uneven if neither were faster).
#
# Usage: scripts/bench-proxy.sh [--duration S] [--connections N] [--rounds N] [--soak S] [--pin] [--pair] [--out FILE]
# Traffic goes only to 127.0.0.1. Everything started here is stopped on exit.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

DURATION=15
CONNECTIONS=50
ROUNDS=2
SOAK=60
OUT=""
PIN=0
PAIR=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --soak) SOAK="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --pin) PIN=1; shift ;;
    --pair) PAIR=1; shift ;;
    -h | --help) bench_usage "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
bench_uint --duration "$DURATION"
bench_uint --connections "$CONNECTIONS"
bench_uint --rounds "$ROUNDS"
bench_uint --soak "$SOAK"
MAX_ROUNDS=10
[ "$PAIR" = 1 ] && MAX_ROUNDS=30
if [ "$DURATION" -gt 300 ] || [ "$SOAK" -gt 600 ] || [ "$ROUNDS" -gt "$MAX_ROUNDS" ] || [ "$CONNECTIONS" -gt 2000 ]; then
  echo "refusing an unbounded run (duration <= 300, soak <= 600, rounds <= 10 or 30 with --pair, connections <= 2000)" >&2
  exit 2
fi

ON_PROXY=""; ON_LOAD=""
if [ "$PIN" = 1 ]; then
  if [ "$(nproc)" -lt 2 ]; then echo "--pin needs at least 2 CPUs" >&2; exit 2; fi
  ON_PROXY="taskset -c 1"; ON_LOAD="taskset -c 0"
fi

bench_work_dir ramp-bench
WORK="$BENCH_WORK"

# --- tools -----------------------------------------------------------------------------
bench_need_tools wrk:wrk haproxy:haproxy nginx:nginx
HAPROXY="$(bench_tool haproxy)"
NGINX="$(bench_tool nginx)"

TARGET="$(bench_target_dir)"
echo "building ramp-proxy and the bench upstream (release)" >&2
bench_build_release --manifest-path "$BENCH_ROOT/crates/ramp-proxy/Cargo.toml" --bin ramp-proxy --example upstream
RAMP="$TARGET/release/ramp-proxy"
UPSTREAM="$TARGET/release/examples/upstream"

P_STABLE=19001; P_CANARY=19002; P_RAMP=18081; P_ADMIN=18091; P_HAPROXY=18082; P_NGINX=18083
bench_ports_free $P_STABLE $P_CANARY $P_RAMP $P_ADMIN $P_HAPROXY $P_NGINX

# Memory and CPU of a proxy count its children too (nginx has a master and a worker).
wait_port() { bench_wait_port "$1"; }
rss_kib() { bench_rss_tree_kib "$1"; }
fd_count() { bench_fd_count "$1"; }
cpu_ticks() { bench_cpu_tree_ticks "$1"; }
CLK_TCK=$BENCH_CLK_TCK

# --- upstreams ---------------------------------------------------------------------------
$ON_LOAD "$UPSTREAM" 127.0.0.1:$P_STABLE stable 1 & bench_track $!
$ON_LOAD "$UPSTREAM" 127.0.0.1:$P_CANARY canary 1 & bench_track $!
wait_port $P_STABLE; wait_port $P_CANARY

# --- contenders --------------------------------------------------------------------------
RAMP_LOG=warn $ON_PROXY "$RAMP" --workers 1 --listen 127.0.0.1:$P_RAMP --admin-listen 127.0.0.1:$P_ADMIN \
  --stable 127.0.0.1:$P_STABLE --canary 127.0.0.1:$P_CANARY --weight 5 & RAMP_PID=$!; bench_track $RAMP_PID

cat > "$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
    option forwardfor
    http-reuse always
frontend fe
    bind 127.0.0.1:$P_HAPROXY
    http-request set-header X-Forwarded-Proto http
    default_backend be
backend be
    balance roundrobin
    server stable 127.0.0.1:$P_STABLE weight 95
    server canary 127.0.0.1:$P_CANARY weight 5
EOF
$ON_PROXY "$HAPROXY" -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 & HAPROXY_PID=$!; bench_track $HAPROXY_PID

cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-body;
    proxy_temp_path $WORK/nginx-proxy;
    fastcgi_temp_path $WORK/nginx-fastcgi;
    uwsgi_temp_path $WORK/nginx-uwsgi;
    scgi_temp_path $WORK/nginx-scgi;
    upstream be {
        server 127.0.0.1:$P_STABLE weight=95;
        server 127.0.0.1:$P_CANARY weight=5;
        keepalive 128;
    }
    server {
        listen 127.0.0.1:$P_NGINX;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto http;
            proxy_buffering on;
        }
    }
}
EOF
$ON_PROXY "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.log" 2>&1 & NGINX_PID=$!; bench_track $NGINX_PID
wait_port $P_RAMP; wait_port $P_HAPROXY; wait_port $P_NGINX
sleep 1

declare -A IDLE
IDLE[ramp]=$(rss_kib $RAMP_PID); IDLE[haproxy]=$(rss_kib $HAPROXY_PID); IDLE[nginx]=$(rss_kib $NGINX_PID)

to_us() { bench_to_us "$1"; }

# run NAME PORT PID -> appends "name rps p50_us p99_us peak_rss_kib non2xx cpu_us_per_request"
RESULTS="$WORK/results.txt"
run() {
  local name="$1" port="$2" pid="${3:-}"
  # Warm-up, so that every contender starts with open upstream connections.
  $ON_LOAD wrk -t1 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
  local peak=0
  if [ -n "$pid" ]; then
    ( while sleep 1; do r=$(rss_kib "$pid"); echo "$r"; done ) >"$WORK/rss-$name.txt" & local sampler=$!
  fi
  local cpu0=0 cpu1=0
  [ -n "$pid" ] && cpu0=$(cpu_ticks "$pid")
  $ON_LOAD wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/" >"$WORK/wrk-$name.txt" 2>&1
  [ -n "$pid" ] && cpu1=$(cpu_ticks "$pid")
  if [ -n "$pid" ]; then
    kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
    peak=$(sort -n "$WORK/rss-$name.txt" | tail -1)
  fi
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk-$name.txt")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$WORK/wrk-$name.txt")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$WORK/wrk-$name.txt")")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$WORK/wrk-$name.txt")
  local total cpu_per_req
  total=$(awk '/requests in/ {print $1}' "$WORK/wrk-$name.txt")
  cpu_per_req=$(awk -v d=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v n="${total:-0}" 'BEGIN { if (n > 0) printf "%.2f", d / hz * 1e6 / n; else print 0 }')
  echo "$name ${rps:-0} ${p50:-0} ${p99:-0} ${peak:-0} ${non2xx:-0} ${cpu_per_req}" >>"$RESULTS"
  echo "  $name: ${rps:-?} req/s, p50 ${p50:-?} us, p99 ${p99:-?} us" >&2
}

LOAD_BEFORE="$(bench_load)"
echo "machine: $(nproc) cores, $(uname -r); wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s); load average $LOAD_BEFORE" >&2
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" >&2
  if [ "$PAIR" = 1 ]; then
    # The report pairs each contender's k-th result, so the order of the lines is free.
    if [ $((round % 2)) = 1 ]; then
      run ramp $P_RAMP $RAMP_PID
      run haproxy $P_HAPROXY $HAPROXY_PID
    else
      run haproxy $P_HAPROXY $HAPROXY_PID
      run ramp $P_RAMP $RAMP_PID
    fi
    continue
  fi
  run direct $P_STABLE
  run ramp $P_RAMP $RAMP_PID
  run haproxy $P_HAPROXY $HAPROXY_PID
  run nginx $P_NGINX $NGINX_PID
done

LOAD_AFTER="$(bench_load)"

# Split check: the ramp-proxy counters say how the traffic was divided.
SPLIT=$(curl -s "http://127.0.0.1:$P_ADMIN/metrics" | awk -F'[ ]' '/^ramp_proxy_requests_total/ {print $0}')

# --- soak -----------------------------------------------------------------------------------
SOAK_TXT="$WORK/soak.txt"
if [ "$SOAK" -gt 0 ]; then
  echo "soak: ${SOAK}s against ramp-proxy" >&2
  echo "0 $(rss_kib $RAMP_PID) $(fd_count $RAMP_PID)" >"$SOAK_TXT"
  $ON_LOAD wrk -t1 -c"$CONNECTIONS" -d"${SOAK}s" "http://127.0.0.1:$P_RAMP/" >"$WORK/wrk-soak.txt" 2>&1 & WRK_PID=$!
  step=$(( SOAK / 12 )); [ "$step" -lt 1 ] && step=1
  t=0
  while kill -0 $WRK_PID 2>/dev/null; do
    sleep "$step"; t=$((t + step))
    kill -0 $WRK_PID 2>/dev/null && echo "$t $(rss_kib $RAMP_PID) $(fd_count $RAMP_PID)" >>"$SOAK_TXT"
  done
  wait $WRK_PID || true
  sleep 1
  echo "after $(rss_kib $RAMP_PID) $(fd_count $RAMP_PID)" >>"$SOAK_TXT"
fi

# --- report -----------------------------------------------------------------------------------
# The paired report (--pair): per-round ratios of ramp-proxy to HAProxy.
pair_report() {
  awk "$BENCH_AWK_MEDIAN"'
    # Two-sided sign test: the chance of k or fewer wins (or as many losses) in n fair tosses.
    function sign_p(k, n,   m, i, c, tail) {
      if (n == 0) return 1
      m = (k < n - k) ? k : n - k; c = 1; tail = 0
      for (i = 0; i <= m; i++) { tail += c; c = c * (n - i) / (i + 1) }
      tail = 2 * tail / (2 ^ n)
      return (tail > 1) ? 1 : tail
    }
    function summary(what, better, arr, n,   lo, hi, k, ahead, behind) {
      lo = arr[1]; hi = arr[1]; ahead = 0; behind = 0
      for (k = 1; k <= n; k++) {
        if (arr[k] < lo) lo = arr[k]; if (arr[k] > hi) hi = arr[k]
        if ((better == "higher" && arr[k] > 1) || (better == "lower" && arr[k] < 1)) ahead++
        else if (arr[k] != 1) behind++
      }
      printf "| %s | %.2f | %.2f to %.2f | %d of %d | %.3f |\n", what, median(arr, n), lo, hi, ahead, n, sign_p(ahead, ahead + behind)
    }
    { n[$1]++; k = n[$1]; rps[$1, k] = $2; p99[$1, k] = $4; cpu[$1, k] = $7; rss[$1, k] = $5 }
    END {
      c = (n["ramp"] < n["haproxy"]) ? n["ramp"] : n["haproxy"]
      split("ramp haproxy", names, " ")
      printf "| | ramp-proxy | HAProxy |\n|---|---:|---:|\n"
      for (k = 1; k <= c; k++) { a[k] = rps["ramp", k]; b[k] = rps["haproxy", k] }
      printf "| requests/s, median of rounds | %.0f | %.0f |\n", median(a, c), median(b, c)
      for (k = 1; k <= c; k++) { a[k] = p99["ramp", k]; b[k] = p99["haproxy", k] }
      printf "| p99, median of rounds | %.0f us | %.0f us |\n", median(a, c), median(b, c)
      for (k = 1; k <= c; k++) { a[k] = cpu["ramp", k]; b[k] = cpu["haproxy", k] }
      printf "| CPU per request, median of rounds | %.1f us | %.1f us |\n", median(a, c), median(b, c)
      ma = 0; mb = 0; for (k = 1; k <= c; k++) { if (rss["ramp", k] > ma) ma = rss["ramp", k]; if (rss["haproxy", k] > mb) mb = rss["haproxy", k] }
      printf "| RSS peak under load | %.1f MiB | %.1f MiB |\n\n", ma / 1024, mb / 1024
      printf "Within each round, ramp-proxy / HAProxy (the two ran seconds apart, so the drift of the machine between rounds cancels out of the ratio):\n\n"
      printf "| ratio | median | range | rounds ramp-proxy was ahead | sign test p |\n|---|---:|---:|---:|---:|\n"
      for (k = 1; k <= c; k++) a[k] = rps["ramp", k] / rps["haproxy", k]
      summary("requests/s (higher is better)", "higher", a, c)
      for (k = 1; k <= c; k++) a[k] = (cpu["haproxy", k] > 0) ? cpu["ramp", k] / cpu["haproxy", k] : 1
      summary("CPU per request (lower is better)", "lower", a, c)
      for (k = 1; k <= c; k++) a[k] = (p99["haproxy", k] > 0) ? p99["ramp", k] / p99["haproxy", k] : 1
      summary("p99 latency (lower is better)", "lower", a, c)
    }' "$RESULTS"
}

# The raw result lines and the split ramp-proxy counted; $1 says how the lines are ordered.
raw_runs() {
  echo "Raw runs (name, requests/s, p50 us, p99 us, peak RSS KiB, non-2xx, CPU us per request)$1:"
  echo
  echo '```'
  cat "$RESULTS"
  echo '```'
  echo
  echo "ramp-proxy split over the whole run (95/5 configured):"
  echo
  echo '```'
  echo "$SPLIT"
  echo '```'
}

# The soak series, if a soak ran.
soak_report() {
  if [ -s "$SOAK_TXT" ]; then
    echo
    echo "### Soak: ramp-proxy under wrk -t1 -c$CONNECTIONS for ${SOAK}s"
    echo
    echo "| t (s) | RSS | open fds |"
    echo "|---:|---:|---:|"
    awk '{ printf "| %s | %.1f MiB | %s |\n", $1, $2 / 1024, $3 }' "$SOAK_TXT"
    echo
    echo "Soak throughput: $(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk-soak.txt") requests/s; $(awk '/requests in/ {print $1}' "$WORK/wrk-soak.txt") requests; errors: $(grep -E 'Socket errors|Non-2xx' "$WORK/wrk-soak.txt" | tr '\n' ' ' || true)"
  fi
}

report() {
  if [ "$PAIR" = 1 ]; then
    echo "### ramp-proxy against HAProxy, paired ($ROUNDS rounds; wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency; the order alternates from round to round)"
    echo
    [ "$PIN" = 1 ] && { echo "Pinned (--pin): each proxy alone on CPU 1; wrk and both upstreams on CPU 0."; echo; }
    echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r). Load average (1, 5, 15 min) before the runs: $LOAD_BEFORE; after: $LOAD_AFTER."
    echo "Versions: $($HAPROXY -v 2>/dev/null | head -1 | awk '{print $1, $2, $3}'), $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'), ramp-proxy $("$RAMP" --version | awk '{print $2}')."
    echo
    pair_report
    echo
    raw_runs ", in the order they ran (ramp-proxy first in odd rounds)"
    soak_report
    return
  fi
  echo "### Side by side (medians over $ROUNDS round(s); wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency)"
  echo
  if [ "$PIN" = 1 ]; then
    echo "Pinned (--pin): each proxy alone on CPU 1; wrk and both upstreams on CPU 0."
    echo
  fi
  echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)."
  echo "Load average (1, 5, 15 min) before the runs: $LOAD_BEFORE; after: $LOAD_AFTER. The 2 cores are shared by wrk, the two upstreams and the proxy under test (and by anything else running), so absolute numbers are noisy; the rounds alternate contenders so that they share the noise."
  echo "Versions: $($HAPROXY -v 2>/dev/null | head -1 | awk '{print $1, $2, $3}'), $($NGINX -v 2>&1 | sed 's/.*: //'), $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'), ramp-proxy $("$RAMP" --version | awk '{print $2}')."
  echo
  awk -v rounds="$ROUNDS" -v idle_ramp="${IDLE[ramp]}" -v idle_haproxy="${IDLE[haproxy]}" -v idle_nginx="${IDLE[nginx]}" "$BENCH_AWK_MEDIAN"'
    {
      n[$1]++; k = n[$1]
      rps[$1, k] = $2; p50[$1, k] = $3; p99[$1, k] = $4; rss[$1, k] = $5; bad[$1] += $6; cpu[$1, k] = $7
    }
    END {
      split("direct ramp haproxy nginx", names, " ")
      for (i = 1; i <= 4; i++) {
        nm = names[i]; c = n[nm]
        for (k = 1; k <= c; k++) { a[k] = rps[nm, k] } ; R[nm] = median(a, c)
        for (k = 1; k <= c; k++) { a[k] = p50[nm, k] } ; P50[nm] = median(a, c)
        for (k = 1; k <= c; k++) { a[k] = p99[nm, k] } ; P99[nm] = median(a, c)
        for (k = 1; k <= c; k++) { a[k] = cpu[nm, k] } ; CPU[nm] = median(a, c)
        m = 0; for (k = 1; k <= c; k++) if (rss[nm, k] > m) m = rss[nm, k]; PEAK[nm] = m
      }
      idle["ramp"] = idle_ramp; idle["haproxy"] = idle_haproxy; idle["nginx"] = idle_nginx
      printf "| target | requests/s | vs HAProxy | p50 | p99 | added p50 | added p99 | added p99 vs HAProxy | CPU per request | RSS idle | RSS peak under load | non-2xx |\n"
      printf "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
      # The ramp/HAProxy ratios within each round: the two ran seconds apart, so the drift
      # of the machine between rounds (other tenants, frequency) cancels out of them.
      c = (n["ramp"] < n["haproxy"]) ? n["ramp"] : n["haproxy"]
      for (k = 1; k <= c; k++) { a[k] = rps["ramp", k] / rps["haproxy", k] }
      lo = a[1]; hi = a[1]; for (k = 1; k <= c; k++) { if (a[k] < lo) lo = a[k]; if (a[k] > hi) hi = a[k] }
      PAIRED_RPS = sprintf("%.2f (%.2f to %.2f over %d rounds)", median(a, c), lo, hi, c)
      for (k = 1; k <= c; k++) { a[k] = (cpu["haproxy", k] > 0) ? cpu["ramp", k] / cpu["haproxy", k] : 0 }
      lo = a[1]; hi = a[1]; for (k = 1; k <= c; k++) { if (a[k] < lo) lo = a[k]; if (a[k] > hi) hi = a[k] }
      PAIRED_CPU = sprintf("%.2f (%.2f to %.2f)", median(a, c), lo, hi)
      for (i = 1; i <= 4; i++) {
        nm = names[i]
        ap50 = P50[nm] - P50["direct"]; ap99 = P99[nm] - P99["direct"]
        hp99 = P99["haproxy"] - P99["direct"]
        ratio = (R["haproxy"] > 0) ? sprintf("%.2f", R[nm] / R["haproxy"]) : "-"
        rel99 = (nm == "direct") ? "-" : ((hp99 > 0) ? sprintf("%.2f", ap99 / hp99) : "-")
        label = (nm == "direct") ? "(a) upstream directly" : (nm == "ramp") ? "(b) ramp-proxy" : (nm == "haproxy") ? "(c) HAProxy" : "(d) nginx"
        printf "| %s | %.0f | %s | %.0f us | %.0f us | %s | %s | %s | %s | %s | %s | %d |\n", label, R[nm], ratio, P50[nm], P99[nm], \
          (nm == "direct") ? "-" : sprintf("%.0f us", ap50), (nm == "direct") ? "-" : sprintf("%.0f us", ap99), rel99, \
          (nm == "direct") ? "-" : sprintf("%.1f us", CPU[nm]), \
          (nm == "direct") ? "-" : sprintf("%.1f MiB", idle[nm] / 1024), (nm == "direct") ? "-" : sprintf("%.1f MiB", PEAK[nm] / 1024), bad[nm]
      }
      printf "\nramp-proxy / HAProxy within each round, median (range): requests/s %s; CPU per request %s.\n", PAIRED_RPS, PAIRED_CPU
    }' "$RESULTS"
  echo
  raw_runs ""
  soak_report
}
if [ -n "$OUT" ]; then report | tee "$OUT"; else report; fi
