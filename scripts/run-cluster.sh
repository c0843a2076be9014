#!/usr/bin/env bash
# Installs what is missing, builds, and starts a local 3-node quorumkv
# cluster (separate processes, data under ./quorumkv-cluster). Prints how to
# connect (node 1: redis-cli -p 7379 unless that port is taken); Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec scripts/cluster.sh "$@"
