#!/usr/bin/env bash
# Starts a local N-node quorumkv cluster as separate processes, with data
# under one folder, prints how to connect, and stops them all on Ctrl-C.
#
#   scripts/cluster.sh [-n NODES] [-d DATA_DIR] [-p BASE_PORT] [-- extra quorumkv flags]
#
# Node i (1-based) listens for clients on BASE_PORT+2(i-1) and for peers on
# BASE_PORT+2(i-1)+1; its HTTP metrics on BASE_PORT+100+i. Default base port:
# 7379 (so node 1 answers `redis-cli -p 7379`), unless taken, then a free one.
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=3
data=./quorumkv-cluster
base=7379
while [ $# -gt 0 ]; do
  case "$1" in
    -n) nodes=$2; shift 2 ;;
    -d) data=$2; shift 2 ;;
    -p) base=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [-n NODES] [-d DATA_DIR] [-p BASE_PORT] [-- quorumkv flags]" >&2; exit 2 ;;
  esac
done
bin=build/quorumkv
[ -x "$bin" ] || { echo "$bin is missing: run scripts/build.sh" >&2; exit 1; }

port_free() { ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
all_free() {
  local b=$1 i
  for ((i = 0; i < nodes; i++)); do
    port_free $((b + 2 * i)) && port_free $((b + 2 * i + 1)) && port_free $((b + 100 + i + 1)) || return 1
  done
}
if ! all_free "$base"; then
  for try in $(seq 20000 400 30000); do
    if all_free "$try"; then base=$try; break; fi
  done
fi

cluster=""
for ((i = 1; i <= nodes; i++)); do
  cluster+="${cluster:+,}n$i=127.0.0.1:$((base + 2 * (i - 1) + 1))"
done
mkdir -p "$data"
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping ${#pids[@]} nodes"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT
for ((i = 1; i <= nodes; i++)); do
  cport=$((base + 2 * (i - 1)))
  "$bin" --name "n$i" --data-dir "$data/n$i" \
    --listen-client "127.0.0.1:$cport" --listen-peer "127.0.0.1:$((cport + 1))" \
    --listen-http "127.0.0.1:$((base + 100 + i))" \
    --initial-cluster "$cluster" "$@" >"$data/n$i.log" 2>&1 &
  pids+=($!)
done
echo "quorumkv: $nodes nodes, data and logs under $data"
for ((i = 1; i <= nodes; i++)); do
  echo "  n$i: redis-cli -p $((base + 2 * (i - 1)))    metrics: http://127.0.0.1:$((base + 100 + i))/metrics"
done
echo "Any node accepts any command. Ctrl-C stops them all."
wait -n "${pids[@]}" || true
echo "a node exited; see its log in $data" >&2
