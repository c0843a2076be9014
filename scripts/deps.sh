#!/usr/bin/env bash
# Installs the Debian 12 packages the build and the tests need, if missing.
#   scripts/deps.sh          build and tests
#   scripts/deps.sh bench    also what bench/compare runs beside quorumkv (etcd, gnuplot)
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config
      libprotobuf-dev protobuf-compiler
      libgtest-dev libgmock-dev libbenchmark-dev
      libspdlog-dev libfmt-dev libasio-dev libcli11-dev libtomlplusplus-dev librocksdb-dev libjemalloc-dev
      liblua5.1-0-dev lua-cjson-dev lua-bitop-dev  # EVAL: Lua 5.1 and Redis's cjson, bit
      redis-tools redis-server python3 python3-redis
      iproute2 iptables)  # network namespaces and cut links for the fault-injection tests
if [ "${1:-}" = bench ]; then
  pkgs+=(etcd-server etcd-client gnuplot-nox)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
