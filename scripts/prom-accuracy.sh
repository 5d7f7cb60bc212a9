#!/usr/bin/env bash
# Measures how close a real Prometheus' histogram_quantile comes to the exact p99, over the
# proxy's latency histogram and over the demo upstream's own (docs/proxy.md, "Accuracy of
# the proxy's histogram").
#
# It builds the measurement (crates/ramp-demo/examples/prom_accuracy.rs) in the release
# profile, like the other bench scripts, and runs it: a stable and a canary demo upstream
# drawing the seed's latency distribution (p50 145, p95 385, p99 720 ms), `ramp proxy` in
# front at 50 % canary, bounded open-loop load (warm-up, the window, a few seconds more) and
# a real Prometheus (Debian's 2.42) scraping the proxy's admin /metrics and both upstreams
# every second. At the window's end it prints histogram_quantile(0.99, …[window]) next to
# the exact p99 of the same window, the relative error and the series count per cohort.
#
# Usage: scripts/prom-accuracy.sh [--window-s S] [--rps R]   (defaults 60 and 300)
# Traffic goes only to 127.0.0.1; everything started is stopped when it ends.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || {
  echo "prom-accuracy: prometheus is not installed (scripts/bootstrap.sh installs it)" >&2
  exit 1
}
cd "$ROOT"
nice -n 10 cargo build --release --locked -q -p ramp-demo --example prom_accuracy
exec "$ROOT/target/release/examples/prom_accuracy" "$@"
