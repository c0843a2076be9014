#!/usr/bin/env bash
# Starts a local 3-node quorumkv cluster. The server (issue 4) is not built yet:
# today this builds the project and runs the Raft simulator as a demonstration.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
if [ -x build/quorumkv ]; then
  exec scripts/cluster.sh "$@"
fi
echo "quorumkv server: not built yet (the Raft core and its simulator are)."
echo "Running a short simulation of a 3-node Raft cluster under faults instead:"
exec build/tests/sim/raft-sim --seeds 50 --nodes 3 --faults all
