#include "raft/tracker.h"

#include <sstream>

#include "base/check.h"

namespace qkv::raft {

// ---- Inflights ----

void Inflights::add(uint64_t last_index) {
  QKV_CHECK(!full()) << "add to a full inflights window";
  QKV_CHECK(buffer_.empty() || buffer_.back() <= last_index)
      << "inflights must be added in order: " << buffer_.back() << " then " << last_index;
  buffer_.push_back(last_index);
}

void Inflights::free_le(uint64_t to) {
  size_t n = 0;
  while (n < buffer_.size() && buffer_[n] <= to) n++;
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<long>(n));
}

void Inflights::free_first_one() {
  if (!buffer_.empty()) buffer_.erase(buffer_.begin());
}

// ---- Progress ----

const char* progress_state_name(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe: return "probe";
    case ProgressState::kReplicate: return "replicate";
    case ProgressState::kSnapshot: return "snapshot";
  }
  return "?";
}

void Progress::reset_state(ProgressState s) {
  probe_sent = false;
  pending_snapshot = 0;
  snapshot_sent_bytes = 0;
  snapshot_acked_bytes = 0;
  state = s;
  inflights.reset();
}

void Progress::become_probe() {
  // After a snapshot, probe from just past it: the follower has it (or the
  // rejection will tell us otherwise).
  if (state == ProgressState::kSnapshot) {
    uint64_t ps = pending_snapshot;
    reset_state(ProgressState::kProbe);
    next = std::max(match + 1, ps + 1);
  } else {
    reset_state(ProgressState::kProbe);
    next = match + 1;
  }
}

void Progress::become_replicate() {
  reset_state(ProgressState::kReplicate);
  next = match + 1;
}

void Progress::become_snapshot(uint64_t snapshot_index) {
  reset_state(ProgressState::kSnapshot);
  pending_snapshot = snapshot_index;
}

bool Progress::maybe_update(uint64_t n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::maybe_decr_to(uint64_t rejected, uint64_t match_hint) {
  if (state == ProgressState::kReplicate) {
    // A rejection of an index at or below match is stale (reordered message).
    if (rejected <= match) return false;
    // Pipelined messages after the gap are doomed: restart just past match.
    next = match + 1;
    return true;
  }
  // Probe (or snapshot): only the rejection of the last probe is fresh.
  if (next == 0 || next - 1 != rejected) return false;
  next = std::max<uint64_t>(std::min(rejected, match_hint + 1), match + 1);
  if (next < 1) next = 1;
  probe_sent = false;
  return true;
}

bool Progress::is_paused() const {
  switch (state) {
    case ProgressState::kProbe: return probe_sent;
    case ProgressState::kReplicate: return inflights.full();
    case ProgressState::kSnapshot: return true;
  }
  return true;
}

std::string Progress::to_string() const {
  std::ostringstream os;
  os << progress_state_name(state) << " match=" << match << " next=" << next;
  if (is_learner) os << " learner";
  if (state == ProgressState::kSnapshot) {
    os << " snap=" << pending_snapshot << " sent=" << snapshot_sent_bytes
       << " acked=" << snapshot_acked_bytes;
  }
  if (probe_sent) os << " paused";
  if (inflights.count()) os << " inflight=" << inflights.count();
  return os.str();
}

// ---- quorum ----

VoteResult majority_vote_result(const IdSet& ids, const std::map<uint64_t, bool>& votes) {
  if (ids.empty()) return VoteResult::kWon;  // an empty half never blocks a joint decision
  size_t granted = 0, missing = 0;
  for (uint64_t id : ids) {
    auto it = votes.find(id);
    if (it == votes.end()) {
      missing++;
    } else if (it->second) {
      granted++;
    }
  }
  size_t quorum = ids.size() / 2 + 1;
  if (granted >= quorum) return VoteResult::kWon;
  if (granted + missing >= quorum) return VoteResult::kPending;
  return VoteResult::kLost;
}

static VoteResult joint_vote_result(const TrackerConfig& c,
                                    const std::map<uint64_t, bool>& votes) {
  VoteResult a = majority_vote_result(c.voters, votes);
  VoteResult b = majority_vote_result(c.voters_outgoing, votes);
  if (a == b) return a;
  if (a == VoteResult::kLost || b == VoteResult::kLost) return VoteResult::kLost;
  return VoteResult::kPending;
}

std::string TrackerConfig::to_string() const {
  std::ostringstream os;
  auto list = [&](const IdSet& s) {
    os << "(";
    bool first = true;
    for (auto id : s) {
      os << (first ? "" : " ") << id;
      first = false;
    }
    os << ")";
  };
  os << "voters=";
  list(voters);
  if (joint()) {
    os << "&&";
    list(voters_outgoing);
  }
  if (!learners.empty()) {
    os << " learners=";
    list(learners);
  }
  if (!learners_next.empty()) {
    os << " learners_next=";
    list(learners_next);
  }
  if (auto_leave) os << " autoleave";
  return os.str();
}

// ---- ProgressTracker ----

ConfState ProgressTracker::conf_state() const {
  ConfState cs;
  for (auto id : config.voters) cs.add_voters(id);
  for (auto id : config.voters_outgoing) cs.add_voters_outgoing(id);
  for (auto id : config.learners) cs.add_learners(id);
  for (auto id : config.learners_next) cs.add_learners_next(id);
  cs.set_auto_leave(config.auto_leave);
  return cs;
}

uint64_t ProgressTracker::committed() const {
  auto match_of = [this](uint64_t id) {
    auto it = progress.find(id);
    return it == progress.end() ? 0 : it->second.match;
  };
  uint64_t a = majority_committed(config.voters, match_of);
  uint64_t b = majority_committed(config.voters_outgoing, match_of);
  uint64_t c = std::min(a, b);
  return c == UINT64_MAX ? 0 : c;
}

uint64_t ProgressTracker::quorum_ack_tick(uint64_t self_id, uint64_t self_tick) const {
  auto tick_of = [&](uint64_t id) -> uint64_t {
    if (id == self_id) return self_tick;
    auto it = progress.find(id);
    if (it == progress.end() || !it->second.has_ack_tick) return 0;
    return it->second.last_ack_tick;
  };
  uint64_t a = majority_committed(config.voters, tick_of);
  uint64_t b = majority_committed(config.voters_outgoing, tick_of);
  uint64_t c = std::min(a, b);
  return c == UINT64_MAX ? 0 : c;
}

bool ProgressTracker::quorum_active(uint64_t self_id) const {
  std::map<uint64_t, bool> active;
  for (const auto& [id, pr] : progress) {
    if (pr.is_learner) continue;
    active[id] = id == self_id || pr.recent_active;
  }
  return joint_vote_result(config, active) == VoteResult::kWon;
}

VoteResult ProgressTracker::vote_result(const std::map<uint64_t, bool>& v) const {
  return joint_vote_result(config, v);
}

void ProgressTracker::record_vote(uint64_t id, bool granted) {
  votes.emplace(id, granted);  // the first vote from a node counts
}

std::tuple<int, int, VoteResult> ProgressTracker::tally_votes() const {
  int granted = 0, rejected = 0;
  for (const auto& [id, pr] : progress) {
    if (pr.is_learner) continue;
    auto it = votes.find(id);
    if (it == votes.end()) continue;
    if (it->second) {
      granted++;
    } else {
      rejected++;
    }
  }
  return {granted, rejected, vote_result(votes)};
}

std::vector<uint64_t> ProgressTracker::voter_ids() const {
  IdSet all = config.voters;
  all.insert(config.voters_outgoing.begin(), config.voters_outgoing.end());
  return std::vector<uint64_t>(all.begin(), all.end());
}

}  // namespace qkv::raft
