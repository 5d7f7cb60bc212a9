#!/usr/bin/env bash
# Runs one coverage-guided fuzz target (fuzz/src/bin/TARGET.rs) with AFL++ for SECONDS,
# starting from its seed corpus (fuzz/corpus/TARGET), then prints one line of results read
# from AFL++'s fuzzer_stats. See docs/reliability.md, "Fuzzing".
#
#   bash scripts/fuzz.sh list          # the targets, one a line
#   bash scripts/fuzz.sh h1 600        # ten minutes on the HTTP/1.1 codec
#
# Idempotent set-up: installs the pinned cargo-afl if it is missing and builds AFL++ for the
# current toolchain if it is not built yet. The build goes to target/fuzz and the run to
# target/fuzz/runs/TARGET (replaced on every run), never into the repository. Runs unattended
# (no terminal, no stdin, CI=true) on a machine whose core_pattern AFL++ would refuse, at the
# lowest CPU priority. Exits 1 if the run saved a crash (the crashing inputs are listed), 2 on
# a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# The version of the `afl` crate that fuzz/Cargo.toml pins; cargo-afl must match it.
AFL_VERSION=0.18.2

targets() {
    for bin in fuzz/src/bin/*.rs; do
        basename "$bin" .rs
    done
}

usage() {
    echo "usage: bash scripts/fuzz.sh TARGET SECONDS | bash scripts/fuzz.sh list" >&2
    echo "targets: $(targets | tr '\n' ' ')" >&2
    exit 2
}

if [ "${1:-}" = list ]; then
    targets
    exit 0
fi
[ $# -eq 2 ] || usage
target=$1
seconds=$2
[ -f "fuzz/src/bin/$target.rs" ] || { echo "no fuzz target named '$target'" >&2; usage; }
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS must be a positive whole number" >&2; usage; }

# cargo-afl, at the pinned version.
if [[ "$(cargo afl --version 2>/dev/null || true)" != "cargo-afl $AFL_VERSION "* ]]; then
    echo "== installing cargo-afl $AFL_VERSION"
    cargo install cargo-afl --version "$AFL_VERSION" --locked
fi
# AFL++ itself, built once per toolchain by cargo-afl under its data directory.
release=$(rustc -vV | sed -n 's/^release: //p')
commit=$(rustc -vV | sed -n 's/^commit-hash: //p')
afl_dir="${XDG_DATA_HOME:-$HOME/.local/share}/afl.rs/rustc-$release-${commit:0:7}/afl.rs-$AFL_VERSION"
if [ ! -x "$afl_dir/afl/bin/afl-fuzz" ]; then
    echo "== building AFL++ for rustc $release"
    cargo afl config --build
fi

export CARGO_TARGET_DIR="$PWD/target/fuzz"
echo "== building fuzz target $target"
(cd fuzz && nice -n 19 cargo afl build --release --locked --bin "$target" </dev/null)

out="target/fuzz/runs/$target"
rm -rf "$out"
mkdir -p "$out"
echo "== fuzzing $target for $seconds s (output in $out)"
# Unattended: no UI, no prompts about the CPU governor or core_pattern, no core pinning
# (the machine is shared), and a generous time-out so that a loaded machine does not turn
# slow executions into hangs.
AFL_NO_UI=1 \
AFL_SKIP_CPUFREQ=1 \
AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
AFL_NO_AFFINITY=1 \
AFL_NO_CRASH_README=1 \
    nice -n 19 cargo afl fuzz -i "fuzz/corpus/$target" -o "$out" -V "$seconds" -t 2000 \
    -- "$CARGO_TARGET_DIR/release/$target" </dev/null >"$out/afl.log" 2>&1 || {
    echo "afl-fuzz failed; the end of its log:" >&2
    tail -n 30 "$out/afl.log" >&2
    exit 1
}

stats="$out/default/fuzzer_stats"
[ -f "$stats" ] || { echo "no $stats; see $out/afl.log" >&2; exit 1; }
stat() { sed -n "s/^$1 *: *//p" "$stats"; }
crashes=$(stat saved_crashes)
echo "fuzz $target: ${seconds} s, execs_done=$(stat execs_done), saved_crashes=$crashes," \
    "saved_hangs=$(stat saved_hangs), corpus_count=$(stat corpus_count)," \
    "edges_found=$(stat edges_found)/$(stat total_edges), bitmap_cvg=$(stat bitmap_cvg)," \
    "stability=$(stat stability)"
if [ "$crashes" != 0 ]; then
    echo "crashing inputs:" >&2
    find "$out/default/crashes" -type f -name 'id:*' >&2
    exit 1
fi
