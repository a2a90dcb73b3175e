#!/usr/bin/env bash
# Second CI step: builds the unit tests and the libFuzzer targets with clang under AddressSanitizer +
# UndefinedBehaviorSanitizer, runs the unit tests, then runs each fuzzer briefly from its seed corpus.
# The CUDA backend is left out of this build (CMakePresets.json): the release build compiles it, its tests
# skip without a GPU, and its nvcc compiles took minutes of CI's 45 for no sanitized code.
# FUZZ_SECONDS sets how long each fuzzer runs (default 10, to keep .ci/run under its 45 minutes on a
# 2-core machine, where the two builds take most of it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --preset asan -j "$jobs"

fuzz_seconds=${FUZZ_SECONDS:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
found=0
while IFS= read -r fuzzer; do
  found=$((found + 1))
  name=$(basename "$fuzzer")
  corpus="$work/$name"
  mkdir -p "$corpus"
  # Seeds are copied so that what the fuzzer learns never lands in the repo.
  seeds=$(find src -type d -path "*/fuzz_corpus/$name" | head -n 1)
  [ -n "$seeds" ] && cp -r "$seeds"/. "$corpus"/
  echo "fuzz: $name for ${fuzz_seconds}s"
  "$fuzzer" -max_total_time="$fuzz_seconds" -rss_limit_mb=4096 -timeout=10 -artifact_prefix="$work/$name-" -print_final_stats=1 "$corpus" \
    > "$work/$name.log" 2>&1 || { tail -n 60 "$work/$name.log"; echo "fuzz: $name FAILED"; exit 1; }
  grep -E "stat::number_of_executed_units" "$work/$name.log" || true
done < <(find build/asan/src -type f -name 'fuzz_*' -perm -u+x | sort)
echo "fuzz: ran $found fuzzers"
