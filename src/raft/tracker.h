// Replication progress of each peer as seen by the leader, the membership
// configuration (possibly joint), and quorum arithmetic over it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <tuple>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "raft/raft.pb.h"

namespace qkv::raft {

using raftpb::ConfState;

// A ring of the last indexes of MSG_APPs in flight to one follower. Bounds
// pipelining: the leader stops sending when the window is full.
class Inflights {
 public:
  explicit Inflights(uint64_t size_max) : size_max_(size_max) {}
  void add(uint64_t last_index);
  // Frees every in-flight message whose last index is <= to.
  void free_le(uint64_t to);
  void free_first_one();
  bool full() const { return buffer_.size() >= size_max_; }
  size_t count() const { return buffer_.size(); }
  void reset() { buffer_.clear(); }

 private:
  uint64_t size_max_;
  std::vector<uint64_t> buffer_;  // ascending
};

enum class ProgressState { kProbe, kReplicate, kSnapshot };
const char* progress_state_name(ProgressState s);

// Raft thesis §3.5 (nextIndex, matchIndex), with etcd-style flow control:
// probe sends one message per heartbeat until a match is found, replicate
// pipelines up to the in-flight window, snapshot waits for a transfer.
struct Progress {
  explicit Progress(uint64_t inflight_max) : inflights(inflight_max) {}

  uint64_t match = 0;
  uint64_t next = 1;
  ProgressState state = ProgressState::kProbe;
  // In kSnapshot: index of the snapshot being sent.
  uint64_t pending_snapshot = 0;
  // Snapshot transfer: bytes sent and acknowledged of the current snapshot.
  uint64_t snapshot_sent_bytes = 0;
  uint64_t snapshot_acked_bytes = 0;
  // Heard from since the last CheckQuorum.
  bool recent_active = false;
  // In kProbe: a MSG_APP was sent since the last heartbeat response.
  bool probe_sent = false;
  // Leader tick counter at which the last acknowledged heartbeat was sent.
  uint64_t last_ack_tick = 0;
  bool has_ack_tick = false;
  Inflights inflights;
  bool is_learner = false;

  void reset_state(ProgressState s);
  void become_probe();
  void become_replicate();
  void become_snapshot(uint64_t snapshot_index);
  // Records a successful append up to n. Returns false if n is stale.
  bool maybe_update(uint64_t n);
  void optimistic_update(uint64_t n) { next = n + 1; }
  // Handles a rejection of the MSG_APP whose prev index was `rejected`;
  // match_hint is the follower's suggestion of where logs may match.
  // Returns false if the rejection is stale.
  bool maybe_decr_to(uint64_t rejected, uint64_t match_hint);
  bool is_paused() const;
  std::string to_string() const;
};

using IdSet = std::set<uint64_t>;

// Quorum arithmetic over one set of voters.
enum class VoteResult { kPending, kLost, kWon };

// The largest value v such that a majority of `ids` have value >= v, where
// value_of(id) gives each voter's value. An empty set yields UINT64_MAX (it
// never constrains a joint config).
template <typename F>
uint64_t majority_committed(const IdSet& ids, F value_of);
VoteResult majority_vote_result(const IdSet& ids, const std::map<uint64_t, bool>& votes);

struct TrackerConfig {
  IdSet voters;           // incoming (or only) voters
  IdSet voters_outgoing;  // non-empty only when joint
  IdSet learners;
  IdSet learners_next;
  bool auto_leave = false;

  bool joint() const { return !voters_outgoing.empty(); }
  std::string to_string() const;
};

class ProgressTracker {
 public:
  explicit ProgressTracker(uint64_t inflight_max) : inflight_max_(inflight_max) {}

  TrackerConfig config;
  std::map<uint64_t, Progress> progress;

  ConfState conf_state() const;
  bool is_singleton() const { return config.voters.size() == 1 && !config.joint(); }
  bool is_voter(uint64_t id) const {
    return config.voters.count(id) || config.voters_outgoing.count(id);
  }
  // The committed index by quorum over matches (min over the two halves of a joint config).
  uint64_t committed() const;
  // The largest tick t such that a quorum acknowledged heartbeats sent at or
  // after t; self_tick is used for the leader itself.
  uint64_t quorum_ack_tick(uint64_t self_id, uint64_t self_tick) const;
  // True if a quorum was recently active (the leader counts itself).
  bool quorum_active(uint64_t self_id) const;
  VoteResult vote_result(const std::map<uint64_t, bool>& votes) const;

  void reset_votes() { votes.clear(); }
  void record_vote(uint64_t id, bool granted);
  // Granted, rejected, result.
  std::tuple<int, int, VoteResult> tally_votes() const;
  std::vector<uint64_t> voter_ids() const;  // sorted, union of both halves

  std::map<uint64_t, bool> votes;
  uint64_t inflight_max() const { return inflight_max_; }

 private:
  uint64_t inflight_max_;
};

// ---- template implementation ----
template <typename F>
uint64_t majority_committed(const IdSet& ids, F value_of) {
  if (ids.empty()) return UINT64_MAX;
  std::vector<uint64_t> v;
  v.reserve(ids.size());
  for (uint64_t id : ids) v.push_back(value_of(id));
  // Sort descending; the value at position quorum-1 is held by a majority.
  std::sort(v.begin(), v.end(), std::greater<uint64_t>());
  size_t quorum = ids.size() / 2 + 1;
  return v[quorum - 1];
}

}  // namespace qkv::raft
