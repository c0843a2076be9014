#include "raft/node.h"

#include <algorithm>

#include "raft/raft.h"

namespace qkv::raft {

const char* role_name(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "?";
}

Status Config::validate() const {
  auto bad = [](const char* what) { return Status(Code::kInvalidArgument, what); };
  if (id == kNone) return bad("id must be non-zero");
  if (storage == nullptr) return bad("storage is required");
  if (heartbeat_interval_ticks <= 0) return bad("heartbeat_interval_ticks must be positive");
  if (election_timeout_ticks <= heartbeat_interval_ticks)
    return bad("election_timeout_ticks must exceed heartbeat_interval_ticks");
  if (inflight_msgs_max == 0) return bad("inflight_msgs_max must be positive");
  if (msg_bytes_max == 0) return bad("msg_bytes_max must be positive");
  if (snapshot_chunk_bytes == 0) return bad("snapshot_chunk_bytes must be positive");
  if (snapshot_inflight_chunks_max == 0) return bad("snapshot_inflight_chunks_max must be positive");
  if (read_mode == ReadMode::kLease && !check_quorum)
    return bad("lease reads require check_quorum");
  // The margin only shortens a lease: it matters, and is checked, in lease mode.
  if (read_mode == ReadMode::kLease &&
      (lease_margin_ticks < 0 || lease_margin_ticks >= election_timeout_ticks))
    return bad("lease_margin_ticks must be in [0, election_timeout_ticks)");
  return Status::ok();
}

bool Ready::empty() const {
  return !soft_state && !hard_state && !snapshot && entries.empty() && !conf_state &&
         committed_entries.empty() && messages.empty() && messages_after_persist.empty() &&
         read_states.empty();
}

Snapshot bootstrap_snapshot(uint64_t group, const ConfState& initial) {
  Snapshot s;
  s.mutable_metadata()->set_group(group);
  s.mutable_metadata()->set_index(1);
  s.mutable_metadata()->set_term(1);
  *s.mutable_metadata()->mutable_conf_state() = initial;
  return s;
}

namespace {

// A message generated in a term before `term` (see ready()).
bool stale_message(const Message& m, uint64_t term) {
  return m.term() != 0 && m.term() < term && m.type() != raftpb::MSG_VOTE_RESP &&
         m.type() != raftpb::MSG_PRE_VOTE_RESP;
}

bool same_hard_state(const HardState& a, const HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}

}  // namespace

// What the outstanding Ready handed out, for advance().
struct Node::Handed {
  bool outstanding = false;
  std::optional<HardState> hard_state;
  uint64_t last_index = 0, last_term = 0;
  uint64_t snapshot_index = 0;
  uint64_t applied_index = 0;
  uint64_t data_bytes = 0;
  std::vector<Entry> conf_changes;
};

Result<std::unique_ptr<Node>> Node::create(const Config& config) {
  if (Status st = config.validate(); !st.is_ok()) return st;
  return std::unique_ptr<Node>(new Node(std::make_unique<Raft>(config)));
}

Node::Node(std::unique_ptr<Raft> raft) : raft_(std::move(raft)), handed_(new Handed) {
  prev_hard_state_ = raft_->hard_state();
  prev_soft_state_ = raft_->soft_state();
}

Node::~Node() = default;

void Node::tick() { raft_->tick(); }

void Node::tick_timeouts() { raft_->tick_timeouts(); }

void Node::advance_clock(uint64_t ticks) { raft_->advance_clock(ticks); }

Status Node::step(const Message& m) {
  switch (m.type()) {
    case raftpb::MSG_HUP:
    case raftpb::MSG_BEAT:
    case raftpb::MSG_CHECK_QUORUM:
    case raftpb::MSG_UNREACHABLE:
    case raftpb::MSG_PROP:
    case raftpb::MSG_NONE:
      return Status(Code::kInvalidArgument,
                    std::string("local message type from the network: ") +
                        raftpb::MessageType_Name(m.type()));
    default:
      break;
  }
  if (m.from() == kNone) return Status(Code::kInvalidArgument, "message without a sender");
  return raft_->step(m);
}

Result<Proposed> Node::propose(std::string data) {
  return raft_->propose(std::move(data), raftpb::ENTRY_NORMAL);
}

Result<Proposed> Node::propose_conf_change(const ConfChange& cc) {
  return raft_->propose_conf_change(cc);
}

Status Node::read_index(std::string ctx) { return raft_->read_index(std::move(ctx)); }

Status Node::transfer_leader(uint64_t transferee) { return raft_->transfer_leader(transferee); }

void Node::campaign() { (void)raft_->campaign_now(); }

void Node::report_unreachable(uint64_t id) {
  Message m;
  m.set_type(raftpb::MSG_UNREACHABLE);
  m.set_from(id);
  m.set_group(raft_->group());
  (void)raft_->step(m);
}

bool Node::has_ready() const {
  if (raft_->soft_state() != prev_soft_state_) return true;
  if (!same_hard_state(raft_->hard_state(), prev_hard_state_)) return true;
  const RaftLog& log = raft_->log();
  return log.has_pending_snapshot() || !log.unstable_entries().empty() ||
         log.has_next_committed_entries() || raft_->has_messages() || raft_->has_read_states();
}

Ready Node::ready() {
  QKV_CHECK(!handed_->outstanding) << "ready() called again before advance()";
  raft_->flush_appends();
  Ready rd;
  SoftState ss = raft_->soft_state();
  if (ss != prev_soft_state_) {
    rd.soft_state = ss;
    prev_soft_state_ = ss;
  }
  HardState hs = raft_->hard_state();
  bool vote_changed = hs.term() != prev_hard_state_.term() || hs.vote() != prev_hard_state_.vote();
  if (!same_hard_state(hs, prev_hard_state_)) rd.hard_state = hs;
  const RaftLog& log = raft_->log();
  if (log.unstable_snapshot()) rd.snapshot = *log.unstable_snapshot();
  rd.entries = log.unstable_entries();
  rd.committed_entries = log.next_committed_entries();
  rd.messages = raft_->take_messages();
  rd.messages_after_persist = raft_->take_messages_after_persist();
  // A message generated in an earlier term is stale and must not leave: an
  // append response queued in term t could acknowledge entries that a leader
  // of a later term truncated before they were ever persisted, and a
  // heartbeat response could confirm a ReadIndex for a leader this node has
  // already deserted (found by the simulator; a truncation always comes with
  // a new term). Vote responses are kept: a rejection tells a candidate
  // stuck in a lower term the term to catch up with, and a grant was true
  // in its term (this node can never vote in that term again).
  uint64_t term = raft_->term();
  auto stale = [term](const Message& m) { return stale_message(m, term); };
  std::erase_if(rd.messages, stale);
  std::erase_if(rd.messages_after_persist, stale);
  if (vote_changed && !rd.messages.empty()) {
    // Nothing may leave before a new term or vote is durable.
    rd.messages.insert(rd.messages.end(), std::make_move_iterator(rd.messages_after_persist.begin()),
                       std::make_move_iterator(rd.messages_after_persist.end()));
    rd.messages_after_persist = std::move(rd.messages);
    rd.messages.clear();
  }
  rd.read_states = raft_->take_read_states();
  rd.must_sync = !rd.entries.empty() || rd.snapshot.has_value() || vote_changed;

  Handed& h = *handed_;
  h = Handed{};
  h.outstanding = true;
  h.hard_state = rd.hard_state;
  if (!rd.entries.empty()) {
    h.last_index = rd.entries.back().index();
    h.last_term = rd.entries.back().term();
  }
  if (rd.snapshot) {
    h.snapshot_index = rd.snapshot->metadata().index();
    h.applied_index = h.snapshot_index;
  }
  if (!rd.committed_entries.empty()) h.applied_index = rd.committed_entries.back().index();
  for (const auto& e : rd.committed_entries) {
    h.data_bytes += entry_bytes(e);
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) h.conf_changes.push_back(e);
  }
  if (rd.snapshot) rd.conf_state = rd.snapshot->metadata().conf_state();
  if (!h.conf_changes.empty()) rd.conf_state = raft_->conf_state_after(h.conf_changes);
  return rd;
}

void Node::advance() {
  Handed& h = *handed_;
  QKV_CHECK(h.outstanding) << "advance() without an outstanding Ready";
  if (h.hard_state) prev_hard_state_ = *h.hard_state;
  raft_->on_persisted(h.last_index, h.last_term, h.snapshot_index);
  raft_->on_applied(h.conf_changes, h.data_bytes, h.applied_index);
  h = Handed{};
}

std::vector<Entry> Node::durable_committed() {
  Handed& h = *handed_;
  if (!h.outstanding || h.snapshot_index != 0 || !h.conf_changes.empty()) return {};
  const RaftLog& log = raft_->log();
  if (log.has_pending_snapshot()) return {};
  uint64_t lo = std::max({h.applied_index, log.applied(), log.first_index() - 1}) + 1;
  uint64_t hi = std::min(log.committed(), log.persisted_index());
  if (hi < lo) return {};
  auto ents = log.slice(lo, hi + 1, raft_->config().committed_bytes_per_ready_max);
  QKV_CHECK(ents.is_ok()) << "durable committed entries unavailable: "
                          << ents.status().to_string();
  std::vector<Entry> out = std::move(ents).value();
  auto conf = std::find_if(out.begin(), out.end(), [](const Entry& e) {
    return e.type() == raftpb::ENTRY_CONF_CHANGE;
  });
  out.erase(conf, out.end());
  if (out.empty()) return out;
  h.applied_index = out.back().index();
  for (const auto& e : out) h.data_bytes += entry_bytes(e);
  return out;
}

std::vector<Message> Node::take_early_messages() {
  const Handed& h = *handed_;
  if (!h.outstanding || h.snapshot_index != 0) return {};
  HardState hs = raft_->hard_state();
  if (hs.term() != prev_hard_state_.term() || hs.vote() != prev_hard_state_.vote()) return {};
  raft_->flush_appends();
  std::vector<Message> out = raft_->take_messages();
  uint64_t term = raft_->term();
  std::erase_if(out, [term](const Message& m) { return stale_message(m, term); });
  return out;
}

NodeStatus Node::status() const {
  NodeStatus s;
  s.id = raft_->id();
  s.group = raft_->group();
  s.hard_state = raft_->hard_state();
  s.soft_state = raft_->soft_state();
  s.applied = raft_->log().applied();
  s.last_index = raft_->log().last_index();
  s.lead_transferee = raft_->lead_transferee();
  s.conf_state = raft_->tracker().conf_state();
  if (raft_->role() == Role::kLeader) {
    for (const auto& [id, pr] : raft_->tracker().progress) {
      s.progress[id] = ProgressStatus{pr.match, pr.next, progress_state_name(pr.state),
                                      pr.is_learner, pr.recent_active};
    }
  }
  return s;
}

ConfState Node::conf_state() const { return raft_->tracker().conf_state(); }
uint64_t Node::id() const { return raft_->id(); }
uint64_t Node::group() const { return raft_->group(); }
uint64_t Node::leader() const { return raft_->lead(); }
Role Node::role() const { return raft_->role(); }
uint64_t Node::term() const { return raft_->term(); }

Result<std::vector<Entry>> Node::entries(uint64_t lo, uint64_t hi, uint64_t bytes_max) const {
  return raft_->log().slice(lo, hi, bytes_max);
}

uint64_t Node::first_index() const { return raft_->log().first_index(); }
uint64_t Node::last_index() const { return raft_->log().last_index(); }

}  // namespace qkv::raft
