// RaftLog: the node's view of its log. Entries below `unstable_.offset` live
// in the LogStorage (persisted); the rest, and an incoming snapshot, are
// unstable: handed out in Ready and stabilized by advance().
//
// Invariants: applied <= committed <= last_index(); first_index() - 1 <= applied.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "raft/storage.h"

namespace qkv::raft {

class Unstable {
 public:
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;
  uint64_t offset = 0;  // index of entries[0]

  std::optional<uint64_t> maybe_first_index() const;
  std::optional<uint64_t> maybe_last_index() const;
  std::optional<uint64_t> maybe_term(uint64_t i) const;
  void stable_to(uint64_t i, uint64_t t);
  void stable_snap_to(uint64_t i);
  void restore(const Snapshot& s);
  void truncate_and_append(const std::vector<Entry>& ents);
  std::vector<Entry> slice(uint64_t lo, uint64_t hi) const;
};

class RaftLog {
 public:
  RaftLog(LogStorage* storage, uint64_t committed_bytes_per_ready_max);

  uint64_t first_index() const;
  uint64_t last_index() const;
  uint64_t last_term() const;
  Result<uint64_t> term(uint64_t i) const;
  // Term at i, or 0 if i is compacted or unavailable.
  uint64_t zero_term_on_error(uint64_t i) const;
  bool match_term(uint64_t i, uint64_t t) const;
  // Entries from lo to the end, at most bytes_max bytes (at least one).
  Result<std::vector<Entry>> entries(uint64_t lo, uint64_t bytes_max) const;
  // Entries in [lo, hi), at most bytes_max bytes (at least one).
  Result<std::vector<Entry>> slice(uint64_t lo, uint64_t hi, uint64_t bytes_max) const;

  // Appends after checking (index, log_term) matches; truncates conflicts.
  // Returns the index of the last new entry, or nullopt on mismatch.
  std::optional<uint64_t> maybe_append(uint64_t index, uint64_t log_term, uint64_t committed,
                                       const std::vector<Entry>& ents);
  uint64_t append(const std::vector<Entry>& ents);
  // First index whose term conflicts with ents (0 if none, or the first new
  // index past the end).
  uint64_t find_conflict(const std::vector<Entry>& ents) const;
  // Largest index <= i whose term is <= t (fast backtracking, thesis §5.3):
  // every entry after it is known not to match a log whose entry at i has
  // term t. Returns {index, term at index}.
  std::pair<uint64_t, uint64_t> find_conflict_by_term(uint64_t i, uint64_t t) const;

  bool is_up_to_date(uint64_t last_i, uint64_t t) const;
  // Commits to max_index if its entry has term t (Raft paper §5.4.2).
  bool maybe_commit(uint64_t max_index, uint64_t t);
  void commit_to(uint64_t to_commit);
  void applied_to(uint64_t i);
  void stable_to(uint64_t i, uint64_t t) { unstable_.stable_to(i, t); }
  void stable_snap_to(uint64_t i) { unstable_.stable_snap_to(i); }
  void restore(const Snapshot& s);

  bool has_next_committed_entries() const;
  std::vector<Entry> next_committed_entries() const;
  bool has_pending_snapshot() const { return unstable_.snapshot.has_value(); }
  Result<std::shared_ptr<const Snapshot>> snapshot() const;
  const std::vector<Entry>& unstable_entries() const { return unstable_.entries; }
  const std::optional<Snapshot>& unstable_snapshot() const { return unstable_.snapshot; }
  // Highest index known durable and matching this log.
  uint64_t persisted_index() const;

  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }
  // For restart: sets applied without the bounds check on commit (commit is
  // raised to applied if it lags).
  void set_applied_on_start(uint64_t applied);
  LogStorage* storage() const { return storage_; }

 private:
  Status must_check_out_of_bounds(uint64_t lo, uint64_t hi) const;

  LogStorage* storage_;
  Unstable unstable_;
  uint64_t committed_ = 0;
  uint64_t applied_ = 0;
  uint64_t committed_bytes_per_ready_max_;
};

}  // namespace qkv::raft
