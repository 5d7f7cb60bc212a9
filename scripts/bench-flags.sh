#!/usr/bin/env bash
# Benchmarks the OFREP flags server on loopback, side by side with Unleash's two evaluation
# servers, the Unleash Proxy (Node.js) and Unleash Edge (Rust): single and bulk evaluation
# throughput, latency percentiles, CPU per request and memory under load, Ramp with and without
# its per-flag user statistics.
#
# Ramp's server is ramp-flags' standalone example (`examples/ofrep_server.rs`, which calls
# `ramp_flags::cli::run`, exactly what `ramp flags serve` runs), built in release and pinned
# to one worker thread, serving a flags file of 8 flags (rollout-following, fixed-weight,
# static, disabled; booleans, strings, numbers, objects) at a live weight of 25 %.
#
# The rivals. flagd, the OpenFeature reference server, is not installable here (a Go binary, in
# neither Debian, npm nor PyPI); see docs/benchmarks-flags.md. Unleash is: the Unleash Proxy
# (`@unleash/proxy` from npm; Node.js, so one thread evaluates) and its successor Unleash Edge
# (`unleash-edge` from crates.io, built once; one Tokio worker thread). Both are given the same
# 8 flags as Unleash toggle definitions: `flexibleRollout` with `stickiness: userId` at the same
# percentages, variants with payloads for the non-boolean values. Edge reads them from its
# offline bootstrap file; the proxy has no offline mode and polls an Unleash server, here a small
# Node stub on 127.0.0.1 serving the client API (`GET /api/client/features`) and accepting its
# registration and metrics. Before measuring, the script checks 2,000 users against all three:
# every answer a 200, each Unleash server's toggles exactly those that an independent
# re-computation of Unleash's bucketing (murmur3 of "groupId:userId") enables.
#
# wrk (one thread) sends POST bodies from a Lua script whose user id cycles through 100,000
# users, so that the bucketing and the distinct-user counting see a realistic population.
# Single evaluation: OFREP `POST /ofrep/v1/evaluate/flags/{key}` against the proxy's
# `POST /proxy` with `"toggles": [key]` and Edge's `POST /api/frontend/features/{key}`; bulk:
# OFREP `POST /ofrep/v1/evaluate/flags` against `POST /proxy/all` and `POST /api/frontend/all`
# (every toggle, enabled or not). Each case runs DURATION seconds per round after a 2 s warm-up,
# the cases alternating (reversed every other round); the report gives medians over the rounds
# and the ratios Ramp / rival. A bare Node.js `http` server that parses the single-evaluation
# request and answers a fixed body is measured too, as a reference for what Node's HTTP layer
# alone costs on this machine (not a rival: it evaluates nothing).
#
# Usage: scripts/bench-flags.sh [--duration S] [--connections N] [--rounds N] [--out FILE]
# Installs wrk, curl, node and npm from Debian if missing, @unleash/proxy into
# $CARGO_TARGET_DIR/bench-flags-npm (npm, without running package install scripts) and
# unleash-edge into $CARGO_TARGET_DIR/bench-flags-edge (cargo install; the first build takes
# 15 to 30 minutes). Traffic goes only to 127.0.0.1. Everything started here is stopped on exit.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

DURATION=10
CONNECTIONS=50
ROUNDS=3
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h | --help) bench_usage "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
bench_uint --duration "$DURATION"
bench_uint --connections "$CONNECTIONS"
bench_uint --rounds "$ROUNDS"
if [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 300 ] || [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 10 ] \
  || [ "$CONNECTIONS" -lt 1 ] || [ "$CONNECTIONS" -gt 2000 ]; then
  echo "refusing an unbounded run (1 <= duration <= 300, 1 <= rounds <= 10, 1 <= connections <= 2000)" >&2
  exit 2
fi

ROOT="$BENCH_ROOT"
bench_work_dir ramp-bench-flags
WORK="$BENCH_WORK"

# --- tools -----------------------------------------------------------------------------
bench_need_tools wrk:wrk curl:curl node:nodejs npm:npm

TARGET="$(bench_target_dir)"
echo "building the OFREP server example (release)" >&2
bench_build_release --manifest-path "$ROOT/crates/ramp-flags/Cargo.toml" --example ofrep_server
SERVER="$TARGET/release/examples/ofrep_server"

# The rival, from npm into a cache directory (not globally), once. --ignore-scripts: nothing
# runs at install time (a dependency of its OpenAPI UI ships an analytics postinstall).
UNLEASH_VERSION=1.4.19
NPM_DIR="$TARGET/bench-flags-npm"
UNLEASH_PKG="$NPM_DIR/node_modules/@unleash/proxy"
if [ "$(node -p "try { require('$UNLEASH_PKG/package.json').version } catch (e) { '' }" 2>/dev/null)" != "$UNLEASH_VERSION" ]; then
  echo "installing @unleash/proxy@$UNLEASH_VERSION (npm) into $NPM_DIR" >&2
  mkdir -p "$NPM_DIR"
  SCARF_ANALYTICS=false npm install --prefix "$NPM_DIR" --no-audit --no-fund --ignore-scripts --omit=dev \
    --loglevel=error "@unleash/proxy@$UNLEASH_VERSION" >&2
fi
UNLEASH_CLIENT_VERSION=$(node -p "require('$NPM_DIR/node_modules/unleash-client/package.json').version")

# The second rival, Unleash Edge (Rust), from crates.io into its own directory, once: the first
# build takes 15 to 30 minutes on 2 cores. Without the default S3 persistence (not used here).
EDGE_VERSION=20.1.0
EDGE_ROOT="$TARGET/bench-flags-edge"
EDGE="$EDGE_ROOT/bin/unleash-edge"
if ! { [ -x "$EDGE" ] && grep -q "^\"unleash-edge $EDGE_VERSION " "$EDGE_ROOT/.crates.toml" 2>/dev/null; }; then
  echo "building unleash-edge $EDGE_VERSION (crates.io) into $EDGE_ROOT; the first time takes a while" >&2
  CARGO_TARGET_DIR="$TARGET/bench-flags-edge-build" cargo install --quiet --locked --no-default-features \
    --root "$EDGE_ROOT" --version "$EDGE_VERSION" unleash-edge
fi

P_STATS=18116; P_NOSTATS=18117; P_UNLEASH=18118; P_UPSTREAM=18119; P_FLOOR=18120; P_EDGE=18121
bench_ports_free $P_STATS $P_NOSTATS $P_UNLEASH $P_UPSTREAM $P_FLOOR $P_EDGE

# Each server is one process: its own memory and CPU.
wait_port() { bench_wait_port "$1" 200; }
rss_kib() { bench_rss_kib "$1"; }
cpu_ticks() { bench_cpu_ticks "$1"; }
CLK_TCK=$BENCH_CLK_TCK

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
# user is evaluated about as often as every other. BENCH_KIND=ofrep sends OFREP bodies;
# BENCH_KIND=unleash sends the Unleash Proxy's (`userId` and `properties`, the client key in
# `Authorization`, and `"toggles": [BENCH_TOGGLE]` when set); BENCH_KIND=edge sends Unleash
# Edge's (the same context, unwrapped, and its frontend token in `Authorization`).
cat > "$WORK/load.lua" <<'EOF'
local users = tonumber(os.getenv("BENCH_USERS") or "100000")
local path = os.getenv("BENCH_PATH") or "/ofrep/v1/evaluate/flags"
local kind = os.getenv("BENCH_KIND") or "ofrep"
local toggle = os.getenv("BENCH_TOGGLE") or ""
local headers = { ["Content-Type"] = "application/json" }
local prefix, suffix
if kind == "unleash" then
  headers["Authorization"] = os.getenv("BENCH_KEY") or ""
  if toggle ~= "" then prefix = '{"toggles":["' .. toggle .. '"],"context":{"userId":"user-'
  else prefix = '{"context":{"userId":"user-' end
  suffix = '","properties":{"plan":"pro","country":"FR"}}}'
elseif kind == "edge" then
  headers["Authorization"] = os.getenv("BENCH_KEY") or ""
  prefix = '{"userId":"user-'
  suffix = '","properties":{"plan":"pro","country":"FR"}}'
else
  prefix = '{"context":{"targetingKey":"user-'
  suffix = '","plan":"pro","country":"FR"}}'
end
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", path, headers, prefix .. (i % users) .. suffix)
end
EOF

# The same 8 flags as the Unleash client API serves them (`GET /api/client/features`). A flag
# that follows the rollout or has a fixed weight is a `flexibleRollout` on `userId` at the
# same percentage (the salt becomes the `groupId`); its "on" value, when not a boolean, is the
# toggle's single variant and payload (Unleash answers "disabled" off it, and the application
# uses its default). The static flag is enabled for everyone with its value as the variant
# (Unleash has no per-flag metadata); the disabled flag is disabled. Unleash rollouts are whole
# percents (Edge's engine reads a fraction as no rollout at all), so 12.5 % becomes 12 %.
# Unleash Edge reads this same document as its offline bootstrap file.
cat > "$WORK/unleash-features.json" <<'EOF'
{"version": 2, "features": [
 {"name": "phase8_encryption_enabled", "type": "release", "project": "default", "enabled": true, "stale": false, "impressionData": false,
  "strategies": [{"name": "flexibleRollout", "constraints": [], "parameters": {"rollout": "25", "stickiness": "userId", "groupId": "phase8_encryption_enabled"}}], "variants": []},
 {"name": "phase8_analytics_persistence", "type": "release", "project": "default", "enabled": true, "stale": false, "impressionData": false,
  "strategies": [{"name": "flexibleRollout", "constraints": [], "parameters": {"rollout": "25", "stickiness": "userId", "groupId": "phase8_analytics_persistence"}}], "variants": []},
 {"name": "phase8_gamification", "type": "release", "project": "default", "enabled": true, "stale": false, "impressionData": false,
  "strategies": [{"name": "flexibleRollout", "constraints": [], "parameters": {"rollout": "25", "stickiness": "userId", "groupId": "phase8-canary-20251006"}}], "variants": []},
 {"name": "banner_color", "type": "experiment", "project": "default", "enabled": true, "stale": false, "impressionData": false,
  "strategies": [{"name": "flexibleRollout", "constraints": [], "parameters": {"rollout": "12", "stickiness": "userId", "groupId": "banner_color"}}],
  "variants": [{"name": "blue", "weight": 1000, "weightType": "variable", "stickiness": "userId", "payload": {"type": "string", "value": "#00f"}}]},
 {"name": "max_items", "type": "experiment", "project": "default", "enabled": true, "stale": false, "impressionData": false,
  "strategies": [{"name": "flexibleRollout", "constraints": [], "parameters": {"rollout": "50", "stickiness": "userId", "groupId": "max_items"}}],
  "variants": [{"name": "large", "weight": 1000, "weightType": "variable", "stickiness": "userId", "payload": {"type": "number", "value": "100"}}]},
 {"name": "ratio", "type": "operational", "project": "default", "enabled": true, "stale": false, "impressionData": false,
  "strategies": [{"name": "default", "constraints": [], "parameters": {}}],
  "variants": [{"name": "low", "weight": 1000, "weightType": "variable", "stickiness": "userId", "payload": {"type": "number", "value": "0.25"}}]},
 {"name": "limits", "type": "experiment", "project": "default", "enabled": true, "stale": false, "impressionData": false,
  "strategies": [{"name": "flexibleRollout", "constraints": [], "parameters": {"rollout": "5", "stickiness": "userId", "groupId": "limits"}}],
  "variants": [{"name": "pro", "weight": 1000, "weightType": "variable", "stickiness": "userId", "payload": {"type": "json", "value": "{\"rps\":100,\"tier\":\"pro\"}"}}]},
 {"name": "old_checkout", "type": "release", "project": "default", "enabled": false, "stale": false, "impressionData": false,
  "strategies": [{"name": "default", "constraints": [], "parameters": {}}], "variants": []}
]}
EOF

# The Unleash server the proxy polls, reduced to what the proxy calls: the features (with an
# ETag, so that unchanged polls get a 304, as from Unleash), registration and metrics.
cat > "$WORK/upstream.js" <<'EOF'
const http = require('http');
const fs = require('fs');
const crypto = require('crypto');
const body = fs.readFileSync(process.argv[2]);
const port = Number(process.argv[3]);
const etag = '"' + crypto.createHash('sha1').update(body).digest('hex') + '"';
const counts = { features: 0, not_modified: 0, register: 0, metrics: 0, other: 0 };
http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  req.resume();
  req.on('end', () => {
    if (req.method === 'GET' && path === '/api/client/features') {
      if (req.headers['if-none-match'] === etag) { counts.not_modified++; res.writeHead(304, { ETag: etag }); res.end(); return; }
      counts.features++;
      res.writeHead(200, { 'Content-Type': 'application/json', ETag: etag }); res.end(body); return;
    }
    if (req.method === 'POST' && path === '/api/client/register') { counts.register++; res.writeHead(202); res.end(); return; }
    if (req.method === 'POST' && path === '/api/client/metrics') { counts.metrics++; res.writeHead(202); res.end(); return; }
    if (req.method === 'GET' && path === '/counts') { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(counts)); return; }
    counts.other++; res.writeHead(404); res.end();
  });
}).listen(port, '127.0.0.1');
EOF

# The proxy started as its README's "Run with Node.js" shows (createApp, then listen), so that
# it listens on 127.0.0.1 only. Its defaults otherwise: polls every 5 s, metrics every 30 s.
# Its toggle backup is kept in memory instead of a file in /tmp.
cat > "$WORK/unleash.js" <<'EOF'
const [, , modules, port, upstream] = process.argv;
const { createApp } = require(modules + '/@unleash/proxy');
const { InMemStorageProvider } = require(modules + '/unleash-client');
const app = createApp({
  unleashUrl: 'http://127.0.0.1:' + upstream + '/api/',
  unleashApiToken: 'bench-server-token',
  clientKeys: ['bench-client-key'],
  enableAllEndpoint: true,
  storageProvider: new InMemStorageProvider(),
  logLevel: 'warn',
});
app.listen(Number(port), '127.0.0.1', () => console.log('Unleash proxy listening on 127.0.0.1:' + port));
EOF

# A reference, not a rival: Node's own HTTP server reading the same single-evaluation request
# (JSON body parsed) and answering a fixed body of the size of the proxy's answer, with no
# framework and no evaluation; the floor under any Node.js server on this machine.
cat > "$WORK/floor.js" <<'EOF'
const body = JSON.stringify({ toggles: [{ name: 'phase8_encryption_enabled', enabled: false, variant: { name: 'disabled', enabled: false, feature_enabled: false, featureEnabled: false }, impressionData: false }] });
require('http').createServer((req, res) => {
  let data = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => { data += chunk; });
  req.on('end', () => {
    JSON.parse(data);
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
    res.end(body);
  });
}).listen(Number(process.argv[2]), '127.0.0.1');
EOF

# Correctness, before any load: for users 0..N-1, the three servers answer 200 to the single and
# the bulk call; each Unleash server's bulk answer holds the 8 toggles, each enabled (with its
# variant and payload) exactly when an independent re-computation of Unleash's flexibleRollout
# bucketing (murmur3 x86_32 of "groupId:userId", seed 0, mod 100, plus 1, at most the rollout)
# says so; each single answer agrees with the bulk one. Ramp's flags are checked for presence and
# for single/bulk agreement (its bucketing is tested against flagd's vectors in the crate).
cat > "$WORK/check.py" <<'EOF'
import http.client, json, sys

features_file, p_ramp, p_unleash, unleash_key, p_edge, edge_key, n = sys.argv[1:8]
p_ramp, p_unleash, p_edge, n = int(p_ramp), int(p_unleash), int(p_edge), int(n)
SINGLE = "phase8_encryption_enabled"
ON = {"phase8_encryption_enabled": "on", "phase8_analytics_persistence": "on", "phase8_gamification": "on",
      "banner_color": "blue", "max_items": "large", "ratio": "low", "limits": "pro", "old_checkout": None}

def murmur3_32(data, seed=0):
    c1, c2, h, n = 0xcc9e2d51, 0x1b873593, seed, len(data)
    for i in range(0, n - n % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & 0xffffffff; k = ((k << 15) | (k >> 17)) & 0xffffffff; k = (k * c2) & 0xffffffff
        h ^= k; h = ((h << 13) | (h >> 19)) & 0xffffffff; h = (h * 5 + 0xe6546b64) & 0xffffffff
    tail, k = data[n - n % 4:], 0
    if len(tail) >= 3: k ^= tail[2] << 16
    if len(tail) >= 2: k ^= tail[1] << 8
    if len(tail) >= 1:
        k ^= tail[0]; k = (k * c1) & 0xffffffff; k = ((k << 15) | (k >> 17)) & 0xffffffff; k = (k * c2) & 0xffffffff; h ^= k
    h ^= n; h ^= h >> 16; h = (h * 0x85ebca6b) & 0xffffffff; h ^= h >> 13; h = (h * 0xc2b2ae35) & 0xffffffff; h ^= h >> 16
    return h

assert murmur3_32(b"hello") == 613153351 and murmur3_32(b"") == 0  # reference vectors

def expected(feature, user):
    if not feature["enabled"]:
        return False
    for s in feature["strategies"]:
        if s["name"] == "default":
            return True
        if s["name"] == "flexibleRollout":
            p = s["parameters"]
            bucket = murmur3_32(("%s:%s" % (p.get("groupId") or feature["name"], user)).encode()) % 100 + 1
            if int(p["rollout"]) > 0 and bucket <= int(p["rollout"]):
                return True
    return False

features = json.load(open(features_file))["features"]

def post(conn, path, doc, headers):
    conn.request("POST", path, json.dumps(doc), dict(headers, **{"Content-Type": "application/json"}))
    r = conn.getresponse()
    return r.status, r.read()

brief = lambda t: t and (t["name"], t["enabled"], t["variant"].get("name"), bool(t["variant"].get("enabled")), t["variant"].get("payload"))
ramp = http.client.HTTPConnection("127.0.0.1", p_ramp)
# Each Unleash server: its bulk call (all toggles) and its single-toggle call, for one user.
uproxy, edge = http.client.HTTPConnection("127.0.0.1", p_unleash), http.client.HTTPConnection("127.0.0.1", p_edge)
rivals = {
    "Unleash Proxy": (
        lambda ctx: post(uproxy, "/proxy/all", {"context": ctx}, {"Authorization": unleash_key}),
        lambda ctx: post(uproxy, "/proxy", {"toggles": [SINGLE], "context": ctx}, {"Authorization": unleash_key}),
        lambda doc: doc["toggles"][0] if len(doc["toggles"]) == 1 else None),
    "Unleash Edge": (
        lambda ctx: post(edge, "/api/frontend/all", ctx, {"Authorization": edge_key}),
        lambda ctx: post(edge, "/api/frontend/features/" + SINGLE, ctx, {"Authorization": edge_key}),
        lambda doc: doc),
}
problems = []
on = {name: {f["name"]: 0 for f in features} for name in ["Ramp"] + list(rivals)}
for i in range(n):
    user = "user-%d" % i
    uctx = {"userId": user, "properties": {"plan": "pro", "country": "FR"}}
    for name, (bulk_call, single_call, single_of) in rivals.items():
        st, body = bulk_call(uctx)
        if st != 200:
            problems.append("%s bulk %s: HTTP %d" % (name, user, st)); continue
        got = {t["name"]: t for t in json.loads(body)["toggles"]}
        if sorted(got) != sorted(f["name"] for f in features):
            problems.append("%s bulk %s: toggles %s" % (name, user, sorted(got)))
        for f in features:
            t, want = got.get(f["name"]), expected(f, user)
            if t is None: continue
            if t["enabled"] != want:
                problems.append("%s %s %s: enabled %s, expected %s" % (name, f["name"], user, t["enabled"], want))
            if want and f["variants"]:
                v = f["variants"][0]
                if t["variant"].get("name") != v["name"] or t["variant"].get("payload") != v["payload"] or not t["variant"]["enabled"]:
                    problems.append("%s %s %s: variant %s" % (name, f["name"], user, t["variant"]))
            elif t["variant"].get("enabled"):
                problems.append("%s %s %s: unexpected variant %s" % (name, f["name"], user, t["variant"]))
            on[name][f["name"]] += t["enabled"]
        st, body = single_call(uctx)
        single = single_of(json.loads(body)) if st == 200 else None
        if st != 200 or brief(single) != brief(got.get(SINGLE)):
            problems.append("%s single %s: HTTP %d %s, bulk %s" % (name, user, st, single, got.get(SINGLE)))
    octx = {"context": {"targetingKey": user, "plan": "pro", "country": "FR"}}
    st, body = post(ramp, "/ofrep/v1/evaluate/flags", octx, {})
    if st != 200:
        problems.append("ramp bulk %s: HTTP %d" % (user, st)); continue
    flags = {f["key"]: f for f in json.loads(body)["flags"]}
    if sorted(flags) != sorted(ON):
        problems.append("ramp bulk %s: flags %s" % (user, sorted(flags)))
    for k, v in ON.items():
        on["Ramp"][k] += 1 if (v is not None and flags.get(k, {}).get("variant") == v) else 0
    st, body = post(ramp, "/ofrep/v1/evaluate/flags/" + SINGLE, octx, {})
    one = json.loads(body) if st == 200 else {}
    if st != 200 or one.get("value") != flags.get(SINGLE, {}).get("value") or one.get("variant") != flags.get(SINGLE, {}).get("variant"):
        problems.append("ramp single %s: HTTP %d %s" % (user, st, one))

print("Checked before the load, users user-0 to user-%d, the single and the bulk call of each of the three servers: %d HTTP answers, %d mismatches%s."
      % (n - 1, 6 * n, len(problems), "" if not problems else ": " + "; ".join(problems[:5])))
print("Share of these users served the flag's \"on\" value (Ramp: the on variant, or the static flag's variant; Unleash: toggle enabled), Ramp / Unleash Proxy / Unleash Edge: " + ", ".join(
      "%s %s" % (f["name"], " / ".join("%.1f%%" % (100.0 * on[s][f["name"]] / n) for s in on)) for f in features) + ".")
sys.exit(1 if problems else 0)
EOF

# --- servers ---------------------------------------------------------------------------------
"$SERVER" --workers 1 --flags "$WORK/flags.toml" --listen 127.0.0.1:$P_STATS --weight 25 \
  >"$WORK/server-stats.log" 2>&1 & STATS_PID=$!; bench_track $STATS_PID
"$SERVER" --workers 1 --flags "$WORK/flags.toml" --listen 127.0.0.1:$P_NOSTATS --weight 25 --no-stats \
  >"$WORK/server-nostats.log" 2>&1 & NOSTATS_PID=$!; bench_track $NOSTATS_PID
node "$WORK/upstream.js" "$WORK/unleash-features.json" $P_UPSTREAM >"$WORK/upstream.log" 2>&1 & UPSTREAM_PID=$!; bench_track $UPSTREAM_PID
wait_port $P_UPSTREAM
# No proxy variables for the rival: its only peer is the stub on 127.0.0.1.
env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy NODE_ENV=production \
  node "$WORK/unleash.js" "$NPM_DIR/node_modules" $P_UNLEASH $P_UPSTREAM >"$WORK/unleash.log" 2>&1 & UNLEASH_PID=$!; bench_track $UNLEASH_PID
node "$WORK/floor.js" $P_FLOOR >"$WORK/floor.log" 2>&1 & FLOOR_PID=$!; bench_track $FLOOR_PID
# Edge offline: the toggles from the bootstrap file, no upstream at all; one Tokio worker thread
# (Edge 20 runs on Tokio's multi-threaded runtime and has no option of its own for it).
EDGE_KEY='*:development.bench-frontend-token'
env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy TOKIO_WORKER_THREADS=1 RUST_LOG=warn \
  "$EDGE" --interface 127.0.0.1 --port $P_EDGE offline --bootstrap-file "$WORK/unleash-features.json" \
  --client-tokens '*:development.bench-client-token' --frontend-tokens "$EDGE_KEY" \
  >"$WORK/edge.log" 2>&1 & EDGE_PID=$!; bench_track $EDGE_PID
wait_port $P_STATS; wait_port $P_NOSTATS; wait_port $P_UNLEASH; wait_port $P_FLOOR; wait_port $P_EDGE
UNLEASH_KEY=bench-client-key
for _ in $(seq 1 300); do  # 503 until the proxy has fetched its toggles
  curl -sf "http://127.0.0.1:$P_UNLEASH/proxy/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$P_UNLEASH/proxy/health" >/dev/null || { echo "the Unleash proxy is not ready:" >&2; cat "$WORK/unleash.log" >&2; exit 1; }
sleep 0.5

# Correctness first (the script stops on any mismatch), on the server without statistics so
# that the counts below reflect the load alone.
python3 "$WORK/check.py" "$WORK/unleash-features.json" $P_NOSTATS $P_UNLEASH $UNLEASH_KEY $P_EDGE "$EDGE_KEY" 2000 >"$WORK/check.txt" \
  || { cat "$WORK/check.txt" >&2; echo "correctness check failed" >&2; exit 1; }
cat "$WORK/check.txt" >&2

# Response sizes, for the report.
SINGLE_FLAG=phase8_encryption_enabled
curl -sf -X POST -H 'content-type: application/json' -d '{"context":{"targetingKey":"user-1","plan":"pro","country":"FR"}}' \
  "http://127.0.0.1:$P_STATS/ofrep/v1/evaluate/flags/$SINGLE_FLAG" >"$WORK/single.json"
curl -sf -X POST -H 'content-type: application/json' -d '{"context":{"targetingKey":"user-1","plan":"pro","country":"FR"}}' \
  "http://127.0.0.1:$P_STATS/ofrep/v1/evaluate/flags" >"$WORK/bulk.json"
curl -sf -X POST -H 'content-type: application/json' -H "authorization: $UNLEASH_KEY" \
  -d '{"toggles":["'$SINGLE_FLAG'"],"context":{"userId":"user-1","properties":{"plan":"pro","country":"FR"}}}' \
  "http://127.0.0.1:$P_UNLEASH/proxy" >"$WORK/u-single.json"
curl -sf -X POST -H 'content-type: application/json' -H "authorization: $UNLEASH_KEY" \
  -d '{"context":{"userId":"user-1","properties":{"plan":"pro","country":"FR"}}}' \
  "http://127.0.0.1:$P_UNLEASH/proxy/all" >"$WORK/u-bulk.json"
curl -sf -X POST -H 'content-type: application/json' -H "authorization: $EDGE_KEY" \
  -d '{"userId":"user-1","properties":{"plan":"pro","country":"FR"}}' \
  "http://127.0.0.1:$P_EDGE/api/frontend/features/$SINGLE_FLAG" >"$WORK/e-single.json"
curl -sf -X POST -H 'content-type: application/json' -H "authorization: $EDGE_KEY" \
  -d '{"userId":"user-1","properties":{"plan":"pro","country":"FR"}}' \
  "http://127.0.0.1:$P_EDGE/api/frontend/all" >"$WORK/e-bulk.json"
SINGLE_BYTES=$(wc -c <"$WORK/single.json"); BULK_BYTES=$(wc -c <"$WORK/bulk.json")
U_SINGLE_BYTES=$(wc -c <"$WORK/u-single.json"); U_BULK_BYTES=$(wc -c <"$WORK/u-bulk.json")
E_SINGLE_BYTES=$(wc -c <"$WORK/e-single.json"); E_BULK_BYTES=$(wc -c <"$WORK/e-bulk.json")
IDLE_STATS=$(rss_kib $STATS_PID); IDLE_NOSTATS=$(rss_kib $NOSTATS_PID); IDLE_UNLEASH=$(rss_kib $UNLEASH_PID); IDLE_FLOOR=$(rss_kib $FLOOR_PID)
IDLE_EDGE=$(rss_kib $EDGE_PID)
THREADS="Ramp $(ls /proc/$NOSTATS_PID/task | wc -l), Unleash Proxy $(ls /proc/$UNLEASH_PID/task | wc -l), Unleash Edge $(ls /proc/$EDGE_PID/task | wc -l)"

to_us() { bench_to_us "$1"; }

# run CASE PORT PID PATH KIND [TOGGLE] -> appends
# "case rps p50_us p99_us peak_rss_kib errors cpu_us_per_request"
RESULTS="$WORK/results.txt"
run() {
  local name="$1" port="$2" pid="$3" path="$4" kind="$5" toggle="${6:-}"
  local key="$UNLEASH_KEY"; [ "$kind" = edge ] && key="$EDGE_KEY"
  export BENCH_PATH="$path" BENCH_KIND="$kind" BENCH_TOGGLE="$toggle" BENCH_KEY="$key"
  wrk -t1 -c"$CONNECTIONS" -d2s -s "$WORK/load.lua" "http://127.0.0.1:$port" >/dev/null 2>&1 || true
  ( while sleep 1; do rss_kib "$pid"; done ) >"$WORK/rss-$name.txt" & local sampler=$!
  local cpu0 cpu1
  cpu0=$(cpu_ticks "$pid")
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/load.lua" \
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
  echo "  $name: ${rps:-?} req/s, p50 ${p50:-?} us, p99 ${p99:-?} us, ${cpu_per_req} us CPU/request, ${errors:-?} errors" >&2
}

run_case() {
  case "$1" in
    single) run single $P_STATS $STATS_PID "$OFREP_SINGLE" ofrep ;;
    bulk) run bulk $P_STATS $STATS_PID "$OFREP_BULK" ofrep ;;
    single_nostats) run single_nostats $P_NOSTATS $NOSTATS_PID "$OFREP_SINGLE" ofrep ;;
    bulk_nostats) run bulk_nostats $P_NOSTATS $NOSTATS_PID "$OFREP_BULK" ofrep ;;
    single_unleash) run single_unleash $P_UNLEASH $UNLEASH_PID /proxy unleash $SINGLE_FLAG ;;
    bulk_unleash) run bulk_unleash $P_UNLEASH $UNLEASH_PID /proxy/all unleash ;;
    node_floor) run node_floor $P_FLOOR $FLOOR_PID /proxy unleash $SINGLE_FLAG ;;
    single_edge) run single_edge $P_EDGE $EDGE_PID /api/frontend/features/$SINGLE_FLAG edge ;;
    bulk_edge) run bulk_edge $P_EDGE $EDGE_PID /api/frontend/all edge ;;
  esac
}

LOAD_BEFORE="$(bench_load)"
echo "machine: $(nproc) cores, $(uname -r); wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s); load average $LOAD_BEFORE" >&2
OFREP_SINGLE=/ofrep/v1/evaluate/flags/$SINGLE_FLAG
OFREP_BULK=/ofrep/v1/evaluate/flags
ORDER=(single single_unleash single_edge single_nostats node_floor bulk bulk_unleash bulk_edge bulk_nostats)
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" >&2
  if [ $((round % 2)) -eq 1 ]; then cases=("${ORDER[@]}"); else cases=(); for ((j = ${#ORDER[@]} - 1; j >= 0; j--)); do cases+=("${ORDER[j]}"); done; fi
  for c in "${cases[@]}"; do run_case "$c"; done
done
LOAD_AFTER="$(bench_load)"

# What the statistics counted over the run (the last 5 minutes: every round), and what the
# Unleash proxy asked of its stub upstream.
curl -sf "http://127.0.0.1:$P_STATS/stats" >"$WORK/stats.json"
UPSTREAM_COUNTS=$(curl -sf "http://127.0.0.1:$P_UPSTREAM/counts" || echo '{}')

# --- report -----------------------------------------------------------------------------------
report() {
  echo "### Flag evaluation under load: Ramp (OFREP), the Unleash Proxy and Unleash Edge side by side (medians over $ROUNDS round(s); wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency)"
  echo
  echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)."
  echo "Load average (1, 5, 15 min) before the runs: $LOAD_BEFORE; after: $LOAD_AFTER. Each server evaluates on one thread; wrk (one thread) runs on the same cores, so absolute numbers are noisy; the cases alternate (in reverse order every other round) so that they share the noise."
  echo "Versions: $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'), ramp-flags $(awk -F'"' '/^version/ {print $2; exit}' "$ROOT/crates/ramp-flags/Cargo.toml") (release, \`examples/ofrep_server --workers 1\`), @unleash/proxy $UNLEASH_VERSION (unleash-client $UNLEASH_CLIENT_VERSION) on Node.js $(node --version), unleash-edge $EDGE_VERSION (\`offline\`, \`TOKIO_WORKER_THREADS=1\`). Threads per process at start: $THREADS."
  echo "Calls: Ramp \`POST /ofrep/v1/evaluate/flags/$SINGLE_FLAG\` (single, ${SINGLE_BYTES} B answer) and \`POST /ofrep/v1/evaluate/flags\` (bulk, 8 flags, ${BULK_BYTES} B); Unleash \`POST /proxy\` with \`\"toggles\": [\"$SINGLE_FLAG\"]\` (single, ${U_SINGLE_BYTES} B) and \`POST /proxy/all\` (bulk, 8 toggles, ${U_BULK_BYTES} B); Edge \`POST /api/frontend/features/$SINGLE_FLAG\` (single, ${E_SINGLE_BYTES} B) and \`POST /api/frontend/all\` (bulk, 8 toggles, ${E_BULK_BYTES} B)."
  echo
  sed 's/$/\n/' "$WORK/check.txt"
  awk -v idle_stats="$IDLE_STATS" -v idle_nostats="$IDLE_NOSTATS" -v idle_unleash="$IDLE_UNLEASH" -v idle_floor="$IDLE_FLOOR" -v idle_edge="$IDLE_EDGE" "$BENCH_AWK_MEDIAN"'
    {
      n[$1]++; k = n[$1]
      rps[$1, k] = $2; p50[$1, k] = $3; p99[$1, k] = $4; rss[$1, k] = $5; bad[$1] += $6; cpu[$1, k] = $7
    }
    END {
      split("single single_nostats single_unleash single_edge bulk bulk_nostats bulk_unleash bulk_edge node_floor", names, " ")
      label["single"] = "single evaluation: Ramp, statistics on"
      label["single_nostats"] = "single evaluation: Ramp, `--no-stats`"
      label["single_unleash"] = "single evaluation: Unleash Proxy"
      label["bulk"] = "bulk evaluation (8 flags): Ramp, statistics on"
      label["bulk_nostats"] = "bulk evaluation (8 flags): Ramp, `--no-stats`"
      label["bulk_unleash"] = "bulk evaluation (8 flags): Unleash Proxy"
      label["single_edge"] = "single evaluation: Unleash Edge"
      label["bulk_edge"] = "bulk evaluation (8 flags): Unleash Edge"
      label["node_floor"] = "reference, not a rival: bare Node.js `http` server, same single request, fixed answer, no evaluation"
      printf "| case | requests/s | p50 | p99 | CPU per request | RSS idle | RSS peak | errors |\n"
      printf "|---|---:|---:|---:|---:|---:|---:|---:|\n"
      for (i = 1; i <= 9; i++) {
        nm = names[i]; c = n[nm]
        for (k = 1; k <= c; k++) { a[k] = rps[nm, k] } ; R[nm] = median(a, c)
        for (k = 1; k <= c; k++) { a[k] = p50[nm, k] } ; P50[nm] = median(a, c)
        for (k = 1; k <= c; k++) { a[k] = p99[nm, k] } ; P99[nm] = median(a, c)
        for (k = 1; k <= c; k++) { a[k] = cpu[nm, k] } ; CPU[nm] = median(a, c)
        m = 0; for (k = 1; k <= c; k++) if (rss[nm, k] > m) m = rss[nm, k]
        PEAK[nm] = m
        idle = (nm ~ /unleash/) ? idle_unleash : (nm ~ /edge/) ? idle_edge : (nm ~ /floor/) ? idle_floor : (nm ~ /nostats/) ? idle_nostats : idle_stats
        printf "| %s | %.0f | %.0f us | %.0f us | %.1f us | %.1f MiB | %.1f MiB | %d |\n", label[nm], R[nm], P50[nm], P99[nm], CPU[nm], idle / 1024, m / 1024, bad[nm]
      }
      print ""
      print "Ratios Ramp / rival, from the medians above (requests/s: above 1 is Ramp faster; latency, CPU and memory: below 1 is Ramp lower):"
      print ""
      printf "| | requests/s | p50 | p99 | CPU per request | RSS peak |\n"
      printf "|---|---:|---:|---:|---:|---:|\n"
      split("single single_nostats bulk bulk_nostats", rn, " ")
      rl["single"] = "single, Ramp statistics on"; rl["single_nostats"] = "single, Ramp `--no-stats`"
      rl["bulk"] = "bulk, Ramp statistics on"; rl["bulk_nostats"] = "bulk, Ramp `--no-stats`"
      split("edge unleash", rv, " "); rvl["edge"] = "Unleash Edge"; rvl["unleash"] = "Unleash Proxy"
      for (j = 1; j <= 2; j++) for (i = 1; i <= 4; i++) {
        nm = rn[i]; u = ((nm ~ /^single/) ? "single_" : "bulk_") rv[j]
        printf "| %s / %s | %.3g | %.3g | %.3g | %.3g | %.3g |\n", rl[nm], rvl[rv[j]], \
          (R[u] > 0 ? R[nm] / R[u] : 0), (P50[u] > 0 ? P50[nm] / P50[u] : 0), (P99[u] > 0 ? P99[nm] / P99[u] : 0), \
          (CPU[u] > 0 ? CPU[nm] / CPU[u] : 0), (PEAK[u] > 0 ? PEAK[nm] / PEAK[u] : 0)
      }
    }' "$RESULTS"
  echo
  echo "The Unleash Proxy's calls to its stub upstream over the whole run: $UPSTREAM_COUNTS (features: full fetches; not_modified: polls answered 304)."
  echo
  echo "Raw runs (case, requests/s, p50 us, p99 us, peak RSS KiB, errors, CPU us per request):"
  echo
  echo '```'
  cat "$RESULTS"
  echo '```'
  echo
  echo "What Ramp's \`GET /stats\` counted (statistics server; 100,000 users cycling; window: the last 5 minutes of the run):"
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
