#include "raft/confchange.h"

namespace qkv::raft {

std::pair<bool, bool> enter_joint_mode(const ConfChange& cc) {
  if (cc.transition() != raftpb::TRANSITION_AUTO || cc.changes_size() > 1) {
    bool auto_leave = cc.transition() != raftpb::TRANSITION_JOINT_EXPLICIT;
    return {true, auto_leave};
  }
  return {false, false};
}

ConfChangeResult Changer::copy() const {
  return ConfChangeResult{tracker_.config, tracker_.progress};
}

void Changer::init_progress(ConfChangeResult& r, uint64_t id, bool learner) const {
  Progress pr(tracker_.inflight_max());
  // Optimistically assume the new node has the log; a rejection backs off.
  pr.next = last_index_ + 1;
  pr.match = 0;
  pr.is_learner = learner;
  // A new node counts as active so CheckQuorum does not immediately fail.
  pr.recent_active = true;
  r.progress.emplace(id, std::move(pr));
}

void Changer::make_voter(ConfChangeResult& r, uint64_t id) const {
  auto it = r.progress.find(id);
  if (it == r.progress.end()) {
    init_progress(r, id, false);
  } else {
    it->second.is_learner = false;
  }
  r.config.learners.erase(id);
  r.config.learners_next.erase(id);
  r.config.voters.insert(id);
}

void Changer::make_learner(ConfChangeResult& r, uint64_t id) const {
  auto it = r.progress.find(id);
  if (it == r.progress.end()) {
    init_progress(r, id, true);
    r.config.learners.insert(id);
    return;
  }
  if (it->second.is_learner) return;
  r.config.voters.erase(id);
  r.config.learners.erase(id);
  r.config.learners_next.erase(id);
  // A voter of the outgoing config stays a voter until the joint config is
  // left; it becomes a learner then.
  if (r.config.voters_outgoing.count(id)) {
    r.config.learners_next.insert(id);
  } else {
    it->second.is_learner = true;
    r.config.learners.insert(id);
  }
}

void Changer::remove(ConfChangeResult& r, uint64_t id) const {
  auto it = r.progress.find(id);
  if (it == r.progress.end()) return;
  r.config.voters.erase(id);
  r.config.learners.erase(id);
  r.config.learners_next.erase(id);
  // Still needed for the outgoing quorum while joint.
  if (!r.config.voters_outgoing.count(id)) r.progress.erase(it);
}

Status Changer::apply(ConfChangeResult& r, const ConfChange& cc) const {
  for (const auto& c : cc.changes()) {
    if (c.node_id() == 0) continue;
    switch (c.type()) {
      case raftpb::CONF_ADD_VOTER: make_voter(r, c.node_id()); break;
      case raftpb::CONF_ADD_LEARNER: make_learner(r, c.node_id()); break;
      case raftpb::CONF_REMOVE_NODE: remove(r, c.node_id()); break;
      default: return Status(Code::kInvalidArgument, "unknown conf change type");
    }
  }
  if (r.config.voters.empty()) return Status(Code::kInvalidArgument, "removed all voters");
  return Status::ok();
}

Status Changer::check_invariants(const ConfChangeResult& r) const {
  const auto& c = r.config;
  auto has = [&](uint64_t id) { return r.progress.count(id) > 0; };
  for (auto id : c.voters)
    if (!has(id)) return Status(Code::kInvalidArgument, "voter without progress");
  for (auto id : c.voters_outgoing)
    if (!has(id)) return Status(Code::kInvalidArgument, "outgoing voter without progress");
  for (auto id : c.learners) {
    if (!has(id)) return Status(Code::kInvalidArgument, "learner without progress");
    if (c.voters.count(id) || c.voters_outgoing.count(id))
      return Status(Code::kInvalidArgument, "node is both voter and learner");
    if (!r.progress.at(id).is_learner)
      return Status(Code::kInvalidArgument, "learner progress not marked learner");
  }
  for (auto id : c.learners_next) {
    if (!has(id)) return Status(Code::kInvalidArgument, "learner_next without progress");
    if (!c.voters_outgoing.count(id))
      return Status(Code::kInvalidArgument, "learner_next not an outgoing voter");
    if (r.progress.at(id).is_learner)
      return Status(Code::kInvalidArgument, "learner_next already marked learner");
  }
  if (!c.joint() && (!c.learners_next.empty() || c.auto_leave))
    return Status(Code::kInvalidArgument, "learners_next or auto_leave outside a joint config");
  return Status::ok();
}

Result<ConfChangeResult> Changer::enter_joint(bool auto_leave, const ConfChange& cc) const {
  ConfChangeResult r = copy();
  if (r.config.joint()) return Status(Code::kInvalidArgument, "config is already joint");
  if (r.config.voters.empty())
    return Status(Code::kInvalidArgument, "can't make a zero-voter config joint");
  r.config.voters_outgoing = r.config.voters;
  if (Status st = apply(r, cc); !st.is_ok()) return st;
  r.config.auto_leave = auto_leave;
  if (Status st = check_invariants(r); !st.is_ok()) return st;
  return r;
}

Result<ConfChangeResult> Changer::leave_joint() const {
  ConfChangeResult r = copy();
  if (!r.config.joint()) return Status(Code::kInvalidArgument, "can't leave a non-joint config");
  for (auto id : r.config.learners_next) {
    r.config.learners.insert(id);
    r.progress.at(id).is_learner = true;
  }
  r.config.learners_next.clear();
  for (auto id : r.config.voters_outgoing) {
    if (!r.config.voters.count(id) && !r.config.learners.count(id)) r.progress.erase(id);
  }
  r.config.voters_outgoing.clear();
  r.config.auto_leave = false;
  if (Status st = check_invariants(r); !st.is_ok()) return st;
  return r;
}

Result<ConfChangeResult> Changer::simple(const ConfChange& cc) const {
  ConfChangeResult r = copy();
  if (r.config.joint())
    return Status(Code::kInvalidArgument, "can't apply a simple change in a joint config");
  if (Status st = apply(r, cc); !st.is_ok()) return st;
  // At most one voter may change without a joint phase (thesis §4.1).
  size_t diff = 0;
  for (auto id : r.config.voters)
    if (!tracker_.config.voters.count(id)) diff++;
  for (auto id : tracker_.config.voters)
    if (!r.config.voters.count(id)) diff++;
  if (diff > 1)
    return Status(Code::kInvalidArgument,
                  "more than one voter changed without entering a joint config");
  if (Status st = check_invariants(r); !st.is_ok()) return st;
  return r;
}

Result<ConfChangeResult> change_config(const ProgressTracker& t, uint64_t last_index,
                                       const ConfChange& cc) {
  Changer ch(t, last_index);
  if (is_leave_joint(cc)) return ch.leave_joint();
  if (auto [use_joint, auto_leave] = enter_joint_mode(cc); use_joint) {
    return ch.enter_joint(auto_leave, cc);
  }
  return ch.simple(cc);
}

Result<ConfChangeResult> restore_conf_state(const ConfState& cs, uint64_t last_index,
                                            uint64_t inflight_max) {
  ConfChangeResult r;
  auto add = [&](uint64_t id, bool learner) {
    if (r.progress.count(id)) return;
    Progress pr(inflight_max);
    pr.next = last_index + 1;
    pr.is_learner = learner;
    pr.recent_active = true;
    r.progress.emplace(id, std::move(pr));
  };
  for (auto id : cs.voters()) {
    r.config.voters.insert(id);
    add(id, false);
  }
  for (auto id : cs.voters_outgoing()) {
    r.config.voters_outgoing.insert(id);
    add(id, false);
  }
  for (auto id : cs.learners()) {
    r.config.learners.insert(id);
    add(id, true);
  }
  for (auto id : cs.learners_next()) {
    r.config.learners_next.insert(id);
    add(id, false);
  }
  r.config.auto_leave = cs.auto_leave();
  for (auto id : r.config.learners) {
    if (r.config.voters.count(id) || r.config.voters_outgoing.count(id))
      return Status(Code::kInvalidArgument, "conf state: node is both voter and learner");
  }
  if (!r.config.joint() && (!r.config.learners_next.empty() || r.config.auto_leave))
    return Status(Code::kInvalidArgument, "conf state: learners_next outside a joint config");
  return r;
}

}  // namespace qkv::raft
