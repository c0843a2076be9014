#!/usr/bin/env bash
# Runs every fuzz target under libFuzzer (clang) for a while each.
#   scripts/fuzz.sh [seconds-per-target]      default 60
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
scripts/build.sh >/dev/null
# The whole build gets coverage instrumentation (fuzzer-no-link), so libFuzzer
# is guided by the code under test, not only by the harness.
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DQKV_LIBFUZZER=ON -DQKV_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
targets=(wal_fuzz snapshot_fuzz resp_fuzz)
ninja -C build-fuzz -j2 "${targets[@]}"
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t
  mkdir -p "$corpus"
  build/tests/fuzz/$t --write-corpus "$corpus"
  echo "== $t for ${secs}s"
  build-fuzz/tests/fuzz/$t -max_total_time="$secs" -max_len=65536 "$corpus" 2>&1 | tail -2
done
