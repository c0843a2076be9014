#!/usr/bin/env bash
# Long fault-injection runs (docs/TESTING_FAULTS.md), e.g.
#   scripts/jepsen.sh --time 600 --runs 5 --nemesis all --workload all
# Every argument goes to tests/e2e/jepsen.py (see --help). Runs as root (network
# namespaces and iptables for the partitions); uses build/quorumkv unless QKV_BINARY is set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export QKV_BINARY="${QKV_BINARY:-$root/build/quorumkv}"
if [ ! -x "$QKV_BINARY" ]; then
  echo "no server binary at $QKV_BINARY: build first (scripts/build.sh) or set QKV_BINARY" >&2
  exit 2
fi
if ! command -v iptables >/dev/null; then
  echo "iptables is missing (Debian package iptables; scripts/deps.sh installs it)" >&2
fi
exec /usr/bin/python3 "$root/tests/e2e/jepsen.py" "$@"
