// Membership changes (Raft thesis §4.3, joint consensus). A Changer computes
// the configuration and progress map that result from a ConfChange without
// touching the tracker; the caller switches to the result.
#pragma once

#include <utility>

#include "base/status.h"
#include "raft/tracker.h"

namespace qkv::raft {

using raftpb::ConfChange;
using raftpb::ConfChangeSingle;

struct ConfChangeResult {
  TrackerConfig config;
  std::map<uint64_t, Progress> progress;
};

class Changer {
 public:
  Changer(const ProgressTracker& tracker, uint64_t last_index)
      : tracker_(tracker), last_index_(last_index) {}

  // Enters a joint configuration: the outgoing voters are the current ones,
  // the incoming ones have `changes` applied.
  Result<ConfChangeResult> enter_joint(bool auto_leave, const ConfChange& cc) const;
  // Leaves the joint configuration: learners_next become learners, outgoing
  // voters not in the incoming config are removed.
  Result<ConfChangeResult> leave_joint() const;
  // A change of at most one voter, without a joint phase.
  Result<ConfChangeResult> simple(const ConfChange& cc) const;

 private:
  Status apply(ConfChangeResult& r, const ConfChange& cc) const;
  void make_voter(ConfChangeResult& r, uint64_t id) const;
  void make_learner(ConfChangeResult& r, uint64_t id) const;
  void remove(ConfChangeResult& r, uint64_t id) const;
  void init_progress(ConfChangeResult& r, uint64_t id, bool learner) const;
  Status check_invariants(const ConfChangeResult& r) const;
  ConfChangeResult copy() const;

  const ProgressTracker& tracker_;
  uint64_t last_index_;
};

// The configuration that results from applying cc to t's (the dispatch
// between enter_joint, leave_joint and simple).
Result<ConfChangeResult> change_config(const ProgressTracker& t, uint64_t last_index,
                                       const ConfChange& cc);

// Whether a ConfChange should use joint consensus, and whether to leave the
// joint configuration automatically.
std::pair<bool, bool> enter_joint_mode(const ConfChange& cc);
inline bool is_leave_joint(const ConfChange& cc) { return cc.changes_size() == 0; }

// Builds the config and progress for a ConfState (on start or snapshot install).
Result<ConfChangeResult> restore_conf_state(const ConfState& cs, uint64_t last_index,
                                            uint64_t inflight_max);

}  // namespace qkv::raft
