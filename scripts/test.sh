#!/usr/bin/env bash
# The project's test command: installs what is missing, builds, runs every
# test (unit, scenario, simulation with 2,000+ faulty seeds), then repeats the
# unit and scenario tests under AddressSanitizer and UBSan.
#   scripts/test.sh            everything
#   QKV_NO_SANITIZE=1 ...      skip the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j2 --timeout 1200)
if [ -z "${QKV_NO_SANITIZE:-}" ]; then
  QKV_BUILD_DIR=build-asan scripts/build.sh -DQKV_SANITIZE=ON -DQKV_BUILD_BENCH=OFF
  (cd build-asan && ctest --output-on-failure -j2 --timeout 1200 -L fast)
fi
echo "all tests passed"
