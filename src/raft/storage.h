// The read side of a Raft log that the application has made durable. The core
// reads persisted entries through this interface and never writes it: the
// application appends entries, sets the hard state and installs snapshots when
// it handles a Ready, and compacts when it has taken a snapshot.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "base/status.h"
#include "raft/raft.pb.h"

namespace qkv::raft {

using raftpb::ConfState;
using raftpb::Entry;
using raftpb::HardState;
using raftpb::Snapshot;

struct InitialState {
  HardState hard_state;
  ConfState conf_state;
};

class LogStorage {
 public:
  virtual ~LogStorage() = default;

  // The hard state and membership configuration saved last.
  virtual InitialState initial_state() const = 0;
  // Entries in [lo, hi), at most bytes_max bytes but always at least one entry
  // if any is in range. kCompacted if lo < first_index(); kUnavailable if hi >
  // last_index() + 1.
  virtual Result<std::vector<Entry>> entries(uint64_t lo, uint64_t hi, uint64_t bytes_max) const = 0;
  // Term of entry i, for i in [first_index() - 1, last_index()]. The entry just
  // before first_index() is the last one covered by the snapshot.
  virtual Result<uint64_t> term(uint64_t i) const = 0;
  virtual uint64_t first_index() const = 0;
  virtual uint64_t last_index() const = 0;
  // The most recent snapshot. kSnapshotTemporarilyUnavailable if one is being
  // built; the core retries later.
  virtual Result<std::shared_ptr<const Snapshot>> snapshot() const = 0;
};

// An in-memory LogStorage, for tests, the simulator and benchmarks. The log is
// kept as a vector whose element 0 is a dummy entry holding the index and term
// of the last compacted entry. Thread-safe.
class MemoryStorage final : public LogStorage {
 public:
  MemoryStorage();

  InitialState initial_state() const override;
  Result<std::vector<Entry>> entries(uint64_t lo, uint64_t hi, uint64_t bytes_max) const override;
  Result<uint64_t> term(uint64_t i) const override;
  uint64_t first_index() const override;
  uint64_t last_index() const override;
  Result<std::shared_ptr<const Snapshot>> snapshot() const override;

  void set_hard_state(const HardState& hs);
  // The membership as of the applied index the node will restart from. It is
  // kept apart from the snapshot's, which must stay the membership as of the
  // snapshot's own index (thesis §5.1).
  void set_conf_state(const ConfState& cs);
  // Replaces the whole log with the snapshot. kInvalidArgument if older than
  // the current snapshot.
  Status apply_snapshot(const Snapshot& snap);
  // Records a snapshot of the applied state at index i (i <= last_index()).
  Result<std::shared_ptr<const Snapshot>> create_snapshot(uint64_t i, const ConfState& cs,
                                                          std::string data);
  // Drops entries before compact_index. It must not exceed the applied index.
  Status compact(uint64_t compact_index);
  // Appends entries, truncating any conflicting suffix. The entries must be
  // contiguous and must start at most at last_index() + 1.
  Status append(const std::vector<Entry>& entries);

 private:
  uint64_t first_index_locked() const { return ents_[0].index() + 1; }
  uint64_t last_index_locked() const { return ents_[0].index() + ents_.size() - 1; }

  mutable std::mutex mu_;
  HardState hard_state_;
  ConfState conf_state_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<Entry> ents_;
};

// Bytes an entry counts for in size limits.
inline uint64_t entry_bytes(const Entry& e) { return e.data().size() + 24; }

}  // namespace qkv::raft
