# shellcheck shell=bash
# What the benchmark scripts (scripts/bench-*.sh) share: the repository's root, building a
# release binary, a work directory and the processes started, both cleaned up by one trap,
# free and busy loopback ports, pinning with taskset, the machine's load, process memory and
# CPU from /proc, wrk's latency units and a median. Sourced, never run:
#
#   . "$(dirname "$0")/lib.sh"
#
# Every function is prefixed `bench_`; the variables it sets are BENCH_ROOT, BENCH_WORK,
# BENCH_PIDS and BENCH_CLK_TCK. Sourcing it changes nothing but those and PATH (which gains
# ~/.cargo/bin, where rustup puts cargo).

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_WORK=""
BENCH_PIDS=()
BENCH_AT_EXIT=()
export PATH="$HOME/.cargo/bin:$PATH"

# Prints the comment block at the top of a script (its usage), without the `#` marks.
bench_usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}

# Refuses (exit 2) any of the given values that is not a whole number: `bench_uint NAME VALUE`.
bench_uint() {
  case "$2" in
    '' | *[!0-9]*) echo "$1: a whole number is expected, not '$2'" >&2; exit 2 ;;
  esac
}

# Creates the work directory (`/tmp/PREFIX.XXXXXX`) in BENCH_WORK and installs the exit trap
# that stops every process in BENCH_PIDS (TERM, then KILL after 0.3 s), runs the commands
# registered with bench_at_exit, and removes the directory. Call it once, before starting
# anything.
bench_work_dir() {
  BENCH_WORK="$(mktemp -d "/tmp/$1.XXXXXX")"
  trap bench_cleanup EXIT
}

# Registers a command (one string, evaluated) to run at exit before processes are stopped.
bench_at_exit() {
  BENCH_AT_EXIT+=("$1")
}

# Remembers a process started in the background, to be stopped at exit.
bench_track() {
  BENCH_PIDS+=("$1")
}

# Stops what the script started and removes its work directory; the EXIT trap.
bench_cleanup() {
  local cmd pid
  for cmd in "${BENCH_AT_EXIT[@]}"; do eval "$cmd" || true; done
  for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ ${#BENCH_PIDS[@]} -gt 0 ]; then sleep 0.3; fi
  for pid in "${BENCH_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  if [ -n "$BENCH_WORK" ]; then rm -rf "$BENCH_WORK"; fi
}

# Installs the Debian packages of missing commands: `bench_need_tools COMMAND:PACKAGE ...`.
# A command found in /usr/sbin counts as present (haproxy and nginx live there).
bench_need_tools() {
  local pair cmd pkg missing=()
  for pair in "$@"; do
    cmd="${pair%%:*}"; pkg="${pair#*:}"
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (Debian packages)" >&2
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The path of a command, found in PATH or in /usr/sbin.
bench_tool() {
  command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"
}

# Builds in the release profile (the one every benchmark measures), quietly, with the lock
# file as committed: `bench_build_release CARGO-ARGS...`, in CARGO_TARGET_DIR if set.
bench_build_release() {
  (cd "$BENCH_ROOT" && cargo build --quiet --release --locked "$@")
}

# The target directory cargo builds into.
bench_target_dir() {
  echo "${CARGO_TARGET_DIR:-$BENCH_ROOT/target}"
}

# Fails (exit 1) if anything listens on one of the given loopback ports.
bench_ports_free() {
  local p
  for p in "$@"; do
    if (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then echo "port $p is already in use" >&2; exit 1; fi
  done
}

# Prints a loopback port nothing listens on now (the kernel's choice).
bench_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until something listens on a loopback port: `bench_wait_port PORT [TRIES]`, 50 ms
# apart (default 100, 5 s); exits 1 if nothing does.
bench_wait_port() {
  local tries="${2:-100}"
  for _ in $(seq 1 "$tries"); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; exit 1
}

# Prints the command prefix that pins to one CPU (`taskset -c N`), or nothing when taskset
# is missing or the machine has a single CPU.
bench_pin() {
  if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then echo "taskset -c $1"; fi
}

# The load average over 1, 5 and 15 minutes.
bench_load() {
  cut -d' ' -f1-3 /proc/loadavg
}

# RSS in KiB of one process.
bench_rss_kib() {
  awk '/^VmRSS:/ {print $2}' /proc/"$1"/status 2>/dev/null || echo 0
}

# RSS in KiB of a process and its children (nginx has a master and a worker).
bench_rss_tree_kib() {
  local total=0 pid kb
  for pid in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    kb=$(awk '/^VmRSS:/ {print $2}' /proc/"$pid"/status 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

# CPU time (user + system, clock ticks) of one process.
bench_cpu_ticks() {
  awk '{print $14 + $15}' /proc/"$1"/stat 2>/dev/null || echo 0
}

# CPU time (user + system, clock ticks) of a process and its children.
bench_cpu_tree_ticks() {
  local total=0 pid t
  for pid in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    t=$(awk '{print $14 + $15}' /proc/"$pid"/stat 2>/dev/null || echo 0)
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
BENCH_CLK_TCK=$(getconf CLK_TCK)

# Open file descriptors of a process.
bench_fd_count() {
  ls /proc/"$1"/fd 2>/dev/null | wc -l
}

# Converts a wrk latency ("1.23ms", "850.00us", "1.02s") to microseconds.
bench_to_us() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); print v + 0 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 }
    else print -1 }'
}

# The awk function `median(arr, n)` (sorts arr[1..n] in place), to paste at the head of an
# awk program: awk "$BENCH_AWK_MEDIAN"' { ... }'.
# shellcheck disable=SC2034
BENCH_AWK_MEDIAN='
    function median(arr, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
      return (n % 2) ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
    }'
