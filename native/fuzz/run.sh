#!/usr/bin/env bash
# Builds the libFuzzer harnesses in native/fuzz/ with clang (AddressSanitizer + UBSan, every report
# fatal) and runs each for FUZZ_SECONDS seconds (default 60). Fails on any crash, sanitizer report,
# timeout or mismatch with the reference; the input that did it is kept in
# native/fuzz/build/crashes/ (replay: native/fuzz/build/<harness>_fuzzer <file>).
#
#   npm run fuzz:native                      # keccak, merkle and guard, 60 s each
#   npm run fuzz:native -- guard             # only some
#   FUZZ_SECONDS=20 npm run fuzz:native      # shorter (CI)
#   native/fuzz/run.sh --check               # can clang build a libFuzzer binary here? (exit 0/1)
#
# CXX picks the compiler (default clang++). The corpora grow in native/fuzz/build/corpus/ across
# runs (ignored by git).
set -euo pipefail
cd "$(dirname "$0")"

CXX=${CXX:-clang++}
SECONDS_EACH=${FUZZ_SECONDS:-60}
ALL=(keccak merkle guard)
BUILD=build
FLAGS=(-std=c++17 -O1 -g -fno-omit-frame-pointer -pthread -Wall -Wextra
  -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=all
  # merkle.cc hashes on several threads from 2 * 16 leaves here (2 * 8192 in the addon), so the
  # threaded path is fuzzed on small trees.
  -DOPG_MERKLE_MIN_PER_THREAD=16)
SOURCES=(reference.cc ../src/keccak.cc ../src/merkle.cc ../src/guard.cc)

# Prints why libFuzzer is not usable here and returns 1, or returns 0.
probe() {
  if ! command -v "$CXX" >/dev/null 2>&1; then
    echo "$CXX not found (Debian: apt-get install clang)"
    return 1
  fi
  mkdir -p "$BUILD"
  printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
    'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' >"$BUILD/probe.cc"
  if ! "$CXX" -fsanitize=fuzzer,address,undefined "$BUILD/probe.cc" -o "$BUILD/probe" >"$BUILD/probe.log" 2>&1; then
    echo "$CXX cannot link -fsanitize=fuzzer,address,undefined (Debian: apt-get install clang libclang-rt-dev): $(tail -1 "$BUILD/probe.log")"
    return 1
  fi
  return 0
}

if [ "${1:-}" = "--check" ]; then
  if why=$(probe); then
    echo "libFuzzer available: $("$CXX" --version | head -1)"
    exit 0
  fi
  echo "$why"
  exit 1
fi

if ! [[ "$SECONDS_EACH" =~ ^[1-9][0-9]*$ ]]; then
  echo "FUZZ_SECONDS must be a positive whole number of seconds, got '$SECONDS_EACH'" >&2
  exit 2
fi
HARNESSES=("$@")
[ ${#HARNESSES[@]} -eq 0 ] && HARNESSES=("${ALL[@]}")
for h in "${HARNESSES[@]}"; do
  if [ ! -f "${h}_fuzzer.cc" ]; then
    echo "no harness '$h' (have: ${ALL[*]})" >&2
    exit 2
  fi
done
if ! why=$(probe); then
  echo "fuzz:native: $why" >&2
  exit 1
fi
echo "fuzz:native: $("$CXX" --version | head -1); ${SECONDS_EACH} s per harness"

mkdir -p "$BUILD/corpus" "$BUILD/crashes" "$BUILD/logs"

# A first corpus for the tree fuzzer: one large input per leaf mode, so that trees of many leaves
# (the threaded path) are there from the start. Random bytes, made here, not committed.
seed_merkle() {
  local dir=$BUILD/corpus/merkle mode
  [ -n "$(ls -A "$dir" 2>/dev/null)" ] && return 0
  for mode in 0 1 2; do
    { printf "\\x0$mode\\x01\\x00"; head -c 4096 /dev/urandom; } >"$dir/seed-mode$mode"
  done
  { printf '\x02\x00\x03'; head -c 2048 /dev/urandom; } >"$dir/seed-duplicates"
}

failed=()
for h in "${HARNESSES[@]}"; do
  bin=$BUILD/${h}_fuzzer
  log=$BUILD/logs/$h.log
  started=$SECONDS
  "$CXX" "${FLAGS[@]}" "${h}_fuzzer.cc" "${SOURCES[@]}" -o "$bin"
  mkdir -p "$BUILD/corpus/$h"
  [ "$h" = merkle ] && seed_merkle
  max_len=4096
  [ "$h" = merkle ] && max_len=8192
  [ "$h" = guard ] && max_len=256
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" -max_total_time="$SECONDS_EACH" -timeout=30 -rss_limit_mb=2560 -max_len="$max_len" \
    -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$h-" "$BUILD/corpus/$h" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  corpus=$(find "$BUILD/corpus/$h" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz:native: $h: ${runs:-?} executions in $((SECONDS - started)) s (build included), ${cov:-cov: ?}, corpus $corpus inputs: ok"
  else
    echo "fuzz:native: $h FAILED (exit $rc) after ${runs:-?} executions; from native/fuzz/$log:" >&2
    grep -E 'MISMATCH|ERROR: |runtime error|SUMMARY|Test unit written' "$log" | head -20 >&2 || true
    tail -25 "$log" >&2
    failed+=("$h")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz:native: failed: ${failed[*]} (inputs in native/fuzz/build/crashes/)" >&2
  exit 1
fi
echo "fuzz:native: all passed (${HARNESSES[*]})"
