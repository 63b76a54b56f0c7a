#!/usr/bin/env bash
# Builds the `parse` fuzz target and runs it for SECONDS (default 10) over the committed corpus.
#
#   tools/fuzz/run.sh [SECONDS]
#
# Works on the stable toolchain: cargo-fuzz with `--sanitizer none` passes only stable `-C` flags
# (SanitizerCoverage through `-Cpasses=sancov-module`), and libFuzzer itself is built from C++ by
# the libfuzzer-sys crate, so a C++ compiler is needed (g++ is on the machines). Exits non-zero
# when the fuzzer finds a crash; the input is then in tools/fuzz/artifacts/parse/. Replay it with
#   cargo fuzz run --fuzz-dir tools/fuzz --sanitizer none -O -a parse tools/fuzz/artifacts/parse/crash-...
# and save it under tools/fuzz/regressions/ so `cargo test --test proptest_sip` replays it.
# Set CARGO_TARGET_DIR to build elsewhere than tools/fuzz/target.
#
# New inputs the run finds go to a scratch directory, not the committed corpus. To keep the ones
# that add coverage: SIPREG_FUZZ_MERGE=1 tools/fuzz/run.sh 60
set -euo pipefail

seconds="${1:-10}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
corpus="$here/corpus/parse"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "run.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
if ! command -v c++ >/dev/null 2>&1; then
  # libFuzzer is C++, built by the libfuzzer-sys crate.
  echo "run.sh: installing g++ for libFuzzer" >&2
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update && apt-get install -y g++
  else
    echo "run.sh: libFuzzer needs a C++ compiler; install g++" >&2
    exit 1
  fi
fi

build_flags=(--fuzz-dir "$here" --sanitizer none --release --debug-assertions)

start=$(date +%s)
cargo fuzz build "${build_flags[@]}" parse
built=$(date +%s)

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# The scratch directory comes first: libFuzzer writes what it finds into the first directory.
cargo fuzz run "${build_flags[@]}" parse "$scratch" "$corpus" -- \
  -dict="$here/sip.dict" \
  -max_total_time="$seconds" \
  -max_len=8192 \
  -timeout=10 \
  -rss_limit_mb=2048 \
  -print_final_stats=1
ran=$(date +%s)

if [ "${SIPREG_FUZZ_MERGE:-0}" = 1 ]; then
  # Add only inputs that reach new edges: hit-count variants are found again within seconds and
  # would grow the committed corpus by thousands of files.
  cargo fuzz run "${build_flags[@]}" parse "$corpus" "$scratch" -- \
    -set_cover_merge=1 -use_counters=0 -max_len=8192
fi

echo "run.sh: build $((built - start)) s, fuzzing $((ran - built)) s, no crash" >&2
