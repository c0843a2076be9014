#include "sim/oracle.h"

#include <algorithm>
#include <sstream>

#include "sim/state_machine.h"

namespace qkv::sim {

namespace {

std::string ids(const google::protobuf::RepeatedField<uint64_t>& r) {
  std::vector<uint64_t> v(r.begin(), r.end());
  std::sort(v.begin(), v.end());
  std::string s = "{";
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "}";
}

template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream o;
  (o << ... << args);
  return o.str();
}

}  // namespace

std::string conf_string(const raftpb::ConfState& cs) {
  std::string s = "voters=" + ids(cs.voters());
  if (cs.learners_size()) s += " learners=" + ids(cs.learners());
  if (cs.voters_outgoing_size()) s += " outgoing=" + ids(cs.voters_outgoing());
  if (cs.learners_next_size()) s += " learners_next=" + ids(cs.learners_next());
  if (cs.auto_leave()) s += " auto_leave";
  return s;
}

Oracle::Oracle(const raftpb::ConfState& bootstrap_conf)
    : bootstrap_conf_(conf_string(bootstrap_conf)) {
  // The bootstrap snapshot: index 1, term 1, committed by construction.
  committed_.resize(2);
  committed_[1] = CommittedRecord{1, 0};
  applied_.resize(2);
  applied_[1] = AppliedRecord{true, 1, 0, kGenesisChain, 0};
  confs_[1] = {bootstrap_conf_, 0};
}

void Oracle::fail(std::string what) {
  if (violation_.empty()) violation_ = std::move(what);
}

void Oracle::on_leader(uint64_t id, uint64_t term) {
  auto [it, inserted] = leaders_.emplace(term, id);
  if (!inserted && it->second != id) {
    fail(
        str("election safety: nodes ", it->second, " and ", id, " are both leader of term ", term));
  }
}

void Oracle::on_vote_granted(uint64_t voter, uint64_t term, uint64_t candidate) {
  auto [it, inserted] = votes_.emplace(std::make_pair(voter, term), candidate);
  if (!inserted && it->second != candidate) {
    fail(str("election safety: node ", voter, " granted its vote in term ", term, " to both ",
             it->second, " and ", candidate));
  }
}

void Oracle::on_hard_state(uint64_t id, const raftpb::HardState& prev,
                           const raftpb::HardState& next) {
  if (next.term() < prev.term()) {
    fail(str("durability: node ", id, " persists term ", next.term(), " below its durable term ",
             prev.term()));
  } else if (next.term() == prev.term() && prev.vote() != 0 && next.vote() != prev.vote()) {
    fail(str("durability: node ", id, " changes its durable vote in term ", next.term(), " from ",
             prev.vote(), " to ", next.vote()));
  } else if (next.commit() < prev.commit()) {
    fail(str("durability: node ", id, " persists commit ", next.commit(),
             " below its durable commit ", prev.commit()));
  }
}

void Oracle::record_log(uint64_t index, const raftpb::Entry& e, uint64_t prev_term, uint64_t by) {
  if (log_.size() <= index) log_.resize(index + 1 + index / 2);
  uint64_t h = entry_hash(e);
  for (LogRecord& r : log_[index]) {
    if (r.term != e.term()) continue;
    if (r.hash != h) {
      fail(str("log matching: two different entries at index ", index, " term ", e.term(),
               " (node ", r.by, " and node ", by, ")"));
    } else if (r.prev_term != kUnknown && prev_term != kUnknown && r.prev_term != prev_term) {
      fail(str("log matching: entry (", index, ", ", e.term(), ") follows term ", r.prev_term,
               " on node ", r.by, " but term ", prev_term, " on node ", by));
    } else if (r.prev_term == kUnknown) {
      r.prev_term = prev_term;
    }
    return;
  }
  log_[index].push_back(LogRecord{e.term(), h, prev_term, by});
}

void Oracle::on_append(uint64_t id, const raft::MemoryStorage& disk, uint64_t durable_commit,
                       const std::vector<raftpb::Entry>& ents) {
  if (ents.empty()) return;
  uint64_t first = disk.first_index();
  uint64_t last = disk.last_index();
  if (ents[0].index() > last + 1) {
    fail(str("contract: node ", id, " was handed entries from index ", ents[0].index(),
             " but its log ends at ", last, " (gap)"));
    return;
  }
  for (size_t j = 0; j < ents.size(); j++) {
    const raftpb::Entry& e = ents[j];
    uint64_t i = e.index();
    if (j > 0 && i != ents[j - 1].index() + 1) {
      fail(str("contract: node ", id, " was handed non-contiguous entries (", ents[j - 1].index(),
               " then ", i, ")"));
      return;
    }
    if (e.term() == 0) {
      fail(str("contract: node ", id, " was handed an entry of term 0 at index ", i));
      return;
    }
    if (i <= durable_commit && i >= first && i <= last) {
      auto t = disk.term(i);
      if (t.is_ok() && *t != e.term()) {
        fail(str("committed entry lost: node ", id, " overwrites entry (", i, ", ", *t,
                 ") below its durable commit index ", durable_commit, " with term ", e.term()));
        return;
      }
    }
    uint64_t prev_term = kUnknown;
    if (j > 0) {
      prev_term = ents[j - 1].term();
    } else if (i >= 1 && i - 1 + 1 >= first && i - 1 <= last) {
      auto t = disk.term(i - 1);
      if (t.is_ok()) prev_term = *t;
    }
    if (prev_term != kUnknown && prev_term > e.term()) {
      fail(str("log matching: node ", id, " would hold term ", prev_term, " at index ", i - 1,
               " before term ", e.term(), " at index ", i, " (terms must not decrease)"));
      return;
    }
    record_log(i, e, prev_term, id);
    if (failed()) return;
  }
}

void Oracle::record_committed(uint64_t index, uint64_t term, uint64_t by, const char* how,
                              uint64_t reporter_term) {
  if (committed_.size() <= index) committed_.resize(index + 1 + index / 2);
  CommittedRecord& r = committed_[index];
  if (r.term == 0) {
    r = CommittedRecord{term, by, reporter_term};
  } else if (r.term == term) {
    r.commit_term_max = std::min(r.commit_term_max, reporter_term);
  } else if (r.term != term) {
    fail(str("committed entry lost: index ", index, " was committed with term ", r.term,
             " (seen on node ", r.by, ") but node ", by, " ", how, " term ", term, " there"));
  }
}

void Oracle::on_commit(uint64_t id, const raft::MemoryStorage& disk, uint64_t commit,
                       uint64_t& checked, uint64_t reporter_term) {
  max_commit_ = std::max(max_commit_, commit);
  uint64_t first = disk.first_index();
  uint64_t last = disk.last_index();
  if (commit > last) {
    fail(str("durability: node ", id, " persists commit index ", commit,
             " beyond its durable log (last index ", last, ")"));
    return;
  }
  for (uint64_t i = std::max(checked + 1, first); i <= commit; i++) {
    auto t = disk.term(i);
    if (!t.is_ok()) break;
    record_committed(i, *t, id, "has committed", reporter_term);
    if (failed()) return;
  }
  checked = std::max(checked, commit);
}

void Oracle::check_leader_completeness(uint64_t id, uint64_t term,
                                       const raft::MemoryStorage& disk) {
  uint64_t first = disk.first_index();
  uint64_t last = disk.last_index();
  // Entries below `first` are covered by the leader's snapshot, whose state
  // is checked when restored; here the retained log is compared with every
  // index known committed in an earlier term.
  uint64_t snap_index = first - 1;
  auto snap_term = disk.term(snap_index);
  if (snap_term.is_ok()) {
    uint64_t ct = committed_term(snap_index);
    if (ct != 0 && ct < term && ct != *snap_term &&
        committed_[snap_index].commit_term_max < term) {
      fail(str("leader completeness: leader ", id, " of term ", term, " holds a snapshot at (",
               snap_index, ", ", *snap_term, ") but term ", ct, " was committed there"));
      return;
    }
  }
  uint64_t hi = std::min<uint64_t>(max_commit_, committed_.size() - 1);
  for (uint64_t i = first; i <= hi; i++) {
    const CommittedRecord& r = committed_[i];
    if (r.term == 0 || r.term >= term || r.commit_term_max >= term) continue;
    if (i > last) {
      fail(str("leader completeness: leader ", id, " of term ", term, " has log up to ", last,
               " but (", i, ", ", r.term, ") was committed in an earlier term (node ", r.by, ")"));
      return;
    }
    auto t = disk.term(i);
    if (t.is_ok() && *t != r.term) {
      fail(str("leader completeness: leader ", id, " of term ", term, " holds (", i, ", ", *t,
               ") but (", i, ", ", r.term, ") was committed (node ", r.by, ")"));
      return;
    }
  }
}

void Oracle::on_snapshot_persist(uint64_t id, const raftpb::SnapshotMetadata& meta) {
  if (meta.index() == 0) {
    fail(str("contract: node ", id, " was handed a snapshot of index 0"));
    return;
  }
  record_committed(meta.index(), meta.term(), id, "installs a snapshot with");
}

void Oracle::on_apply(uint64_t id, const raftpb::Entry& e, uint64_t chain_after) {
  uint64_t i = e.index();
  if (applied_.size() <= i) applied_.resize(i + 1 + i / 2);
  AppliedRecord& r = applied_[i];
  uint64_t h = entry_hash(e);
  if (!r.set) {
    r = AppliedRecord{true, e.term(), h, chain_after, id};
  } else if (r.term != e.term() || r.hash != h) {
    fail(str("state machine safety: node ", id, " applies (", i, ", ", e.term(), ") but node ",
             r.by, " applied (", i, ", ", r.term, ") ",
             r.term == e.term() ? "with different data" : ""));
    return;
  } else if (r.chain != chain_after) {
    fail(str("state machine safety: node ", id, " and node ", r.by,
             " applied the same entry at index ", i, " on top of different prefixes"));
    return;
  }
  record_committed(i, e.term(), id, "applies");
}

void Oracle::on_restore(uint64_t id, const raftpb::SnapshotMetadata& meta, uint64_t chain) {
  uint64_t i = meta.index();
  if (i == 0) return;  // the empty storage of a joining node
  const AppliedRecord* r = applied_at(i);
  if (r == nullptr) {
    fail(str("state machine safety: node ", id, " restores a snapshot at index ", i,
             " that no replica ever applied"));
  } else if (r->term != meta.term()) {
    fail(str("state machine safety: node ", id, " restores a snapshot at (", i, ", ", meta.term(),
             ") but (", i, ", ", r->term, ") was applied (node ", r->by, ")"));
  } else if (r->chain != chain) {
    fail(str("state machine safety: node ", id, " restores a snapshot at index ", i,
             " whose state differs from what node ", r->by, " applied"));
  }
}

void Oracle::on_conf_applied(uint64_t id, uint64_t index, const raftpb::ConfState& cs) {
  std::string c = conf_string(cs);
  auto [it, inserted] = confs_.emplace(index, std::make_pair(c, id));
  if (!inserted && it->second.first != c) {
    fail(str("config agreement: after the conf change at index ", index, " node ", id, " has ", c,
             " but node ", it->second.second, " had ", it->second.first));
  }
}

void Oracle::on_snapshot_conf(uint64_t id, const raftpb::SnapshotMetadata& meta,
                              const raftpb::ConfState& node_conf) {
  std::string snap = conf_string(meta.conf_state());
  std::string node = conf_string(node_conf);
  if (snap != node) {
    fail(str("config agreement: node ", id, " installed a snapshot at ", meta.index(), " with ",
             snap, " but its config is ", node));
    return;
  }
  // The config recorded for the last conf change at or before the snapshot.
  auto it = confs_.upper_bound(meta.index());
  if (it == confs_.begin()) return;
  --it;
  if (it->second.first != snap) {
    // The last recorded change may be older than the last actual change if
    // nobody has reported the newer one yet; only a recorded change between
    // the two could tell. Every change applied anywhere is recorded, and the
    // snapshot was taken by a node that applied up to its index, so the
    // latest recorded change at or below the index is the one in force.
    fail(str("config agreement: node ", id, " installed a snapshot at ", meta.index(), " with ",
             snap, " but the config in force there (since index ", it->first, ", node ",
             it->second.second, ") is ", it->second.first));
  }
}

}  // namespace qkv::sim
