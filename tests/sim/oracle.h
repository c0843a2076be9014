// Safety oracles of the simulator (Raft paper §5.2-5.4, Figure 3), checked
// incrementally as the simulated nodes persist and apply: each check costs
// O(entries touched), so they run after every step of every seed.
//
//   election safety       at most one leader per term; one granted vote per
//                         (voter, term), across restarts
//   log matching          every (index, term) names one entry, with one
//                         predecessor term: two logs that agree on an
//                         (index, term) agree on the whole prefix
//   committed prefix      once an index is committed, every node's committed
//                         prefix holds the same entry there; no node ever
//                         overwrites an entry below its durable commit index
//   leader completeness   a new leader's log holds every entry known
//                         committed in earlier terms
//   state-machine safety  no two nodes apply different entries at one index;
//                         applied prefixes (hash chains) agree; a snapshot
//                         restores exactly the state replicas had at its index
//   config agreement      every node ends up with the same membership after
//                         applying the same configuration entry
//
// The first violation is kept; the simulation stops at it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "raft/storage.h"

namespace qkv::sim {

struct AppliedRecord {
  bool set = false;
  uint64_t term = 0;
  uint64_t hash = 0;   // entry_hash of the entry
  uint64_t chain = 0;  // state machine chain after applying it
  uint64_t by = 0;     // first node that applied it
};

// Canonical text of a ConfState (sorted id lists), for comparisons and traces.
std::string conf_string(const raftpb::ConfState& cs);

class Oracle {
 public:
  explicit Oracle(const raftpb::ConfState& bootstrap_conf);

  bool failed() const { return !violation_.empty(); }
  const std::string& violation() const { return violation_; }
  // Records a violation found by the caller (keeps the first one).
  void fail(std::string what);

  // ---- election safety ----
  void on_leader(uint64_t id, uint64_t term);
  void on_vote_granted(uint64_t voter, uint64_t term, uint64_t candidate);
  size_t leaders_elected() const { return leaders_.size(); }
  uint64_t max_leader_term() const { return leaders_.empty() ? 0 : leaders_.rbegin()->first; }

  // ---- durability (called while a node persists a Ready) ----
  // The hard state about to replace `prev` on node id's disk.
  void on_hard_state(uint64_t id, const raftpb::HardState& prev, const raftpb::HardState& next);
  // Entries about to be appended to `disk`, whose durable commit index is
  // `durable_commit`. Call before MemoryStorage::append.
  void on_append(uint64_t id, const raft::MemoryStorage& disk, uint64_t durable_commit,
                 const std::vector<raftpb::Entry>& ents);
  // The node made commit index `commit` durable; `checked` is how far this
  // node's log was already recorded (updated).
  void on_commit(uint64_t id, const raft::MemoryStorage& disk, uint64_t commit, uint64_t& checked,
                 uint64_t reporter_term = ~0ULL);
  // Node `by` considers (index, term) committed (durably or in memory); `how`
  // says which, for the report. Raises max_commit().
  void on_committed(uint64_t index, uint64_t term, uint64_t by, const char* how,
                    uint64_t reporter_term = ~0ULL) {
    if (index > max_commit_) max_commit_ = index;
    record_committed(index, term, by, how, reporter_term);
  }
  // A node that became leader of `term` has persisted its log.
  void check_leader_completeness(uint64_t id, uint64_t term, const raft::MemoryStorage& disk);
  // A snapshot about to be installed (its index and term must fit the
  // committed history).
  void on_snapshot_persist(uint64_t id, const raftpb::SnapshotMetadata& meta);

  // ---- state machines ----
  void on_apply(uint64_t id, const raftpb::Entry& e, uint64_t chain_after);
  // A state machine was restored to (index, chain) from a snapshot.
  void on_restore(uint64_t id, const raftpb::SnapshotMetadata& meta, uint64_t chain);
  // After advance(): the node's config after applying the conf change entry at
  // `index` (the last one it applied).
  void on_conf_applied(uint64_t id, uint64_t index, const raftpb::ConfState& cs);
  // After advance() of a Ready that installed a snapshot and applied no conf
  // change: the node's config must be the snapshot's, which must be the
  // config in force at that index.
  void on_snapshot_conf(uint64_t id, const raftpb::SnapshotMetadata& meta,
                        const raftpb::ConfState& node_conf);

  const AppliedRecord* applied_at(uint64_t index) const {
    return index < applied_.size() && applied_[index].set ? &applied_[index] : nullptr;
  }
  // Highest commit index any node has made durable.
  uint64_t max_commit() const { return max_commit_; }
  uint64_t committed_term(uint64_t index) const {
    return index < committed_.size() ? committed_[index].term : 0;
  }

 private:
  struct LogRecord {
    uint64_t term = 0;
    uint64_t hash = 0;
    uint64_t prev_term = 0;  // kUnknown if not known when recorded
    uint64_t by = 0;
  };
  struct CommittedRecord {
    uint64_t term = 0;  // 0 = not known
    uint64_t by = 0;
    // An upper bound on the term in which the entry became committed: the
    // smallest current term of a node that reported it committed (~0 when
    // no report said). Leader completeness (Raft paper §5.4) binds leaders
    // of later terms only: a stale leader elected in an older term (a
    // delayed vote) may lack an entry committed after its term began.
    uint64_t commit_term_max = ~0ULL;
  };
  static constexpr uint64_t kUnknown = ~0ULL;

  void record_committed(uint64_t index, uint64_t term, uint64_t by, const char* how,
                        uint64_t reporter_term = ~0ULL);
  void record_log(uint64_t index, const raftpb::Entry& e, uint64_t prev_term, uint64_t by);

  std::string violation_;
  std::string bootstrap_conf_;
  std::map<uint64_t, uint64_t> leaders_;                        // term -> leader
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> votes_;     // (voter, term) -> candidate
  std::vector<std::vector<LogRecord>> log_;                     // by index
  std::vector<CommittedRecord> committed_;                      // by index
  std::vector<AppliedRecord> applied_;                          // by index
  std::map<uint64_t, std::pair<std::string, uint64_t>> confs_;  // conf index -> (conf, node)
  uint64_t max_commit_ = 1;
};

}  // namespace qkv::sim
