// Micro benchmarks of the Raft core on an in-memory 3-node cluster: one
// thread, messages delivered at once, MemoryStorage as the "disk". They
// measure the core's own cost per entry (CPU and allocations), not I/O.
//
//   build/bench/raft_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <new>

#include "raft/node.h"

#include "alloc_counter.h"

namespace qkv::raft {
namespace {

class BenchCluster {
 public:
  explicit BenchCluster(int n) {
    ConfState cs;
    for (int i = 1; i <= n; i++) cs.add_voters(i);
    for (int i = 1; i <= n; i++) {
      storages_.push_back(std::make_unique<MemoryStorage>());
      (void)storages_.back()->apply_snapshot(bootstrap_snapshot(0, cs));
      Config c;
      c.id = i;
      c.storage = storages_.back().get();
      nodes_.push_back(std::move(Node::create(c)).value());
    }
    nodes_[0]->campaign();
    stabilize();
  }

  Node& leader() { return *nodes_[0]; }

  // Handles Readys and delivers messages until quiescent; returns the number
  // of entries applied on the leader.
  uint64_t stabilize() {
    uint64_t applied = 0;
    for (;;) {
      bool any = false;
      for (size_t i = 0; i < nodes_.size(); i++) {
        Node& n = *nodes_[i];
        if (!n.has_ready()) continue;
        any = true;
        Ready rd = n.ready();
        for (auto& m : rd.messages) queue_.push_back(std::move(m));
        (void)storages_[i]->append(rd.entries);
        if (rd.hard_state) storages_[i]->set_hard_state(*rd.hard_state);
        for (auto& m : rd.messages_after_persist) queue_.push_back(std::move(m));
        if (i == 0) applied += rd.committed_entries.size();
        n.advance();
      }
      while (!queue_.empty()) {
        any = true;
        (void)nodes_[queue_.front().to() - 1]->step(queue_.front());
        queue_.pop_front();
      }
      if (!any) return applied;
    }
  }

  // Keeps the logs short so memory does not grow with the iteration count.
  void compact() {
    for (size_t i = 0; i < nodes_.size(); i++) {
      uint64_t applied = nodes_[i]->status().applied;
      if (applied > storages_[i]->first_index() + 1000) (void)storages_[i]->compact(applied - 500);
    }
  }

 private:
  std::vector<std::unique_ptr<MemoryStorage>> storages_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::deque<Message> queue_;
};

// One proposal at a time, each carried to commit on all three nodes.
void BM_ProposeToCommit(benchmark::State& state) {
  BenchCluster c(3);
  std::string payload(static_cast<size_t>(state.range(0)), 'x');
  uint64_t entries = 0;
  uint64_t allocs_before = g_allocs.load();
  for (auto _ : state) {
    auto p = c.leader().propose(payload);
    if (!p.is_ok()) state.SkipWithError("propose failed");
    entries += c.stabilize();
    if ((entries & 1023) == 0) c.compact();
  }
  state.counters["entries/s"] = benchmark::Counter(static_cast<double>(entries),
                                                   benchmark::Counter::kIsRate);
  state.counters["allocs/entry"] =
      static_cast<double>(g_allocs.load() - allocs_before) / static_cast<double>(entries ? entries : 1);
}
BENCHMARK(BM_ProposeToCommit)->Arg(100)->Arg(1024);

// Batches of proposals between Ready cycles: pipelining and batching.
void BM_ProposeBatch(benchmark::State& state) {
  BenchCluster c(3);
  std::string payload(100, 'x');
  const int64_t batch = state.range(0);
  uint64_t entries = 0;
  uint64_t allocs_before = g_allocs.load();
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; i++) {
      if (!c.leader().propose(payload).is_ok()) state.SkipWithError("propose failed");
    }
    entries += c.stabilize();
    c.compact();
  }
  state.counters["entries/s"] = benchmark::Counter(static_cast<double>(entries),
                                                   benchmark::Counter::kIsRate);
  state.counters["allocs/entry"] =
      static_cast<double>(g_allocs.load() - allocs_before) / static_cast<double>(entries ? entries : 1);
}
BENCHMARK(BM_ProposeBatch)->Arg(16)->Arg(256);

// ReadIndex round trips on the leader (one heartbeat round per batch).
void BM_ReadIndex(benchmark::State& state) {
  BenchCluster c(3);
  uint64_t n = 0;
  for (auto _ : state) {
    (void)c.leader().read_index(std::to_string(n++));
    c.stabilize();
  }
  state.counters["reads/s"] = benchmark::Counter(static_cast<double>(n),
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReadIndex);

}  // namespace
}  // namespace qkv::raft

BENCHMARK_MAIN();
